package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// TestDiscoveryKeyRotationAndOutage runs the discovery server with
// --from-apiserver (refreshing every second) while a client reads the JWKS
// without pause, and puts it through a signing key rotation, an API server
// outage of IRSA_FAULTS_OUTAGE, and the old key's retirement:
//   - the JWKS is never empty and never fails to load;
//   - the key sets served are exactly {old}, {old, new}, {new}, in order;
//   - during the outage the last good documents are served, tokens signed
//     before it verify as AWS would verify them, and staleness is reported
//     (/readyz fails on keys-fresh, /readyz/keys passes,
//     irsa_webhook_discovery_stale is 1), then clears after recovery.
func TestDiscoveryKeyRotationAndOutage(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{DiscoveryFromAPIServer: true, DiscoveryArgs: []string{"--refresh-interval=1s"}})
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns, sa = "team-discovery", "app"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, sa, nil); err != nil {
		t.Fatal(err)
	}

	var phase atomic.Value
	phase.Store("old-key")
	counts := newTally()
	var mu sync.Mutex
	var served []string // distinct key sets in the order first served
	stopReader := runLoad(ctx, 1, func(ctx context.Context, _, _ int) {
		// About 200 reads a second: steady, without taking a core.
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
		p := phase.Load().(string)
		keys, err := s.Discovery.JWKS(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			counts.add(p+"/error", err.Error())
			return
		case len(keys.Keys) == 0:
			counts.add(p+"/empty", "")
			return
		}
		counts.add(p+"/ok", "")
		set := kidSet(keys)
		mu.Lock()
		if len(served) == 0 || served[len(served)-1] != set {
			served = append(served, set)
		}
		mu.Unlock()
	})

	oldKids := apiServerKids(t, ctx, s)
	waitServed(t, ctx, s, oldKids)
	waitCounts(t, ctx, counts, 20, "old-key/ok")

	// Rotate: sign with a new key, accept both.
	newKey, err := harness.NewSigningKey(filepath.Join(s.Dir, "pki"), "sa-signing-2")
	if err != nil {
		t.Fatal(err)
	}
	oldKey := s.APIServer.SigningKey
	s.APIServer.SigningKey = newKey
	s.APIServer.VerifyKeys = []*harness.SigningKey{oldKey, newKey}
	phase.Store("rotation")
	if err := s.APIServer.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	bothKids := apiServerKids(t, ctx, s)
	waitServed(t, ctx, s, bothKids)
	waitFresh(t, ctx, s, true)
	token, err := harness.RequestTokenFor(ctx, c, ns, sa, s.Audience, 3600)
	if err != nil {
		t.Fatal(err)
	}

	phase.Store("outage")
	outageStart := time.Now()
	if err := s.APIServer.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFresh(t, ctx, s, false)
	t.Logf("staleness reported %s into the outage", time.Since(outageStart).Round(100*time.Millisecond))
	if err := harness.WaitFor(ctx, outageDuration+time.Minute, "the outage to run its course", func(context.Context) error {
		if d := time.Since(outageStart); d < outageDuration {
			return fmt.Errorf("down for %s of %s", d.Round(time.Second), outageDuration)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := verifyLikeAWS(ctx, s, token); err != nil {
		t.Errorf("token signed by the new key before the outage does not verify against the documents served during it: %v", err)
	}
	if got := kidSetOf(t, ctx, s); got != bothKids {
		t.Errorf("during the outage the JWKS holds %s, want the last good set %s", got, bothKids)
	}

	phase.Store("recovery")
	if err := s.APIServer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFresh(t, ctx, s, true)

	// Retire the old key.
	s.APIServer.VerifyKeys = []*harness.SigningKey{newKey}
	phase.Store("retire")
	if err := s.APIServer.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	newKids := apiServerKids(t, ctx, s)
	waitServed(t, ctx, s, newKids)
	waitCounts(t, ctx, counts, counts.sum("*/*")+20, "*/ok")
	stopReader()

	counts.log(t, "JWKS reads (phase/result)")
	t.Logf("key sets served, in order: %v", served)
	for _, r := range []string{"empty", "error"} {
		if n := counts.sum("*/" + r); n > 0 {
			t.Errorf("JWKS reads: %d %s, want 0", n, r)
		}
	}
	if diff := cmp.Diff([]string{oldKids, bothKids, newKids}, served); diff != "" {
		t.Errorf("key sets served (-want +got):\n%s", diff)
	}
	checkNoPanic(t, s.Discovery.Process)
}

// kidSet renders a JWKS's key IDs, sorted, as one comparable string.
func kidSet(keys *harness.JWKS) string {
	kids := make([]string, 0, len(keys.Keys))
	for _, k := range keys.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return "{" + strings.Join(kids, ",") + "}"
}

func kidSetOf(t *testing.T, ctx context.Context, s *harness.Stack) string {
	t.Helper()
	keys, err := s.Discovery.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return kidSet(keys)
}

// apiServerKids is the key set the API server itself publishes.
func apiServerKids(t *testing.T, ctx context.Context, s *harness.Stack) string {
	t.Helper()
	raw, err := s.APIServer.Client.Discovery().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatalf("get the API server's JWKS: %v", err)
	}
	var keys harness.JWKS
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("decode the API server's JWKS: %v", err)
	}
	return kidSet(&keys)
}

func waitServed(t *testing.T, ctx context.Context, s *harness.Stack, want string) {
	t.Helper()
	if err := harness.WaitFor(ctx, time.Minute, "the discovery server to serve "+want, func(ctx context.Context) error {
		keys, err := s.Discovery.JWKS(ctx)
		if err != nil {
			return err
		}
		if got := kidSet(keys); got != want {
			return fmt.Errorf("serving %s", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitFresh waits until the discovery server reports its keys fresh (or
// stale): /readyz and the stale gauge agree, and /readyz/keys passes either
// way since the last good keys are still served.
func waitFresh(t *testing.T, ctx context.Context, s *harness.Stack, fresh bool) {
	t.Helper()
	wantReady, wantStale := "200", 1.0
	if !fresh {
		wantReady = "500"
	} else {
		wantStale = 0
	}
	if err := harness.WaitFor(ctx, time.Minute, fmt.Sprintf("the discovery server to report fresh=%v", fresh), func(ctx context.Context) error {
		if got := probe(ctx, s.Discovery.HealthURL+"/readyz"); got != wantReady {
			return fmt.Errorf("/readyz %s, want %s", got, wantReady)
		}
		if got := probe(ctx, s.Discovery.HealthURL+"/readyz/keys"); got != "200" {
			return fmt.Errorf("/readyz/keys %s, want 200", got)
		}
		v, err := s.Discovery.Metric(ctx, "irsa_webhook_discovery_stale")
		if err != nil {
			return err
		}
		if v != wantStale {
			return fmt.Errorf("irsa_webhook_discovery_stale %v, want %v", v, wantStale)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// verifyLikeAWS checks a token as AWS IAM does for a web identity, against
// the documents the discovery server serves now: issuer, audience,
// signature by a published key, and a sub claim.
func verifyLikeAWS(ctx context.Context, s *harness.Stack, token string) error {
	ctx = oidc.ClientContext(ctx, s.Discovery.HTTPClient())
	provider, err := oidc.NewProvider(ctx, s.Discovery.Issuer)
	if err != nil {
		return fmt.Errorf("discover %s: %w", s.Discovery.Issuer, err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: s.Audience, SupportedSigningAlgs: []string{oidc.RS256}}).Verify(ctx, token)
	if err != nil {
		return err
	}
	if idt.Subject == "" {
		return fmt.Errorf("token has no sub claim")
	}
	return nil
}
