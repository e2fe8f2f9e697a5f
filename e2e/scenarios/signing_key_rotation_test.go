package scenarios

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Scenario 6: the API server is restarted with a new signing key and the
// old one kept as a verification key. The discovery server then serves both
// (with either key source), and tokens signed before and after the rotation
// both pass AWS's checks and the STS.
func TestScenario6SigningKeyRotation(t *testing.T) {
	for name, opts := range keySources {
		t.Run(name, func(t *testing.T) {
			s := harness.StartForTest(t, bins, opts)
			ctx := testContext(t)
			const ns, sa = "team-f", "app"
			annotatedServiceAccount(t, ctx, s, ns, sa, true)
			before := createPod(t, ctx, s, ns, harness.SimplePod("before", sa))
			oldToken, err := harness.RequestToken(ctx, s.APIServer.Client, before)
			if err != nil {
				t.Fatal(err)
			}
			oldKid := kidOf(t, oldToken)

			newKey, err := harness.NewSigningKey(filepath.Join(s.Dir, "pki"), "sa-signing-2")
			if err != nil {
				t.Fatal(err)
			}
			s.APIServer.SigningKey = newKey
			s.APIServer.VerifyKeys = []*harness.SigningKey{s.SigningKey, newKey}
			if err := s.APIServer.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if !opts.DiscoveryFromAPIServer {
				// A key file list is a flag: the rollout restarts the server.
				s.Discovery.Configure(harness.DiscoverySource{KeyFiles: []string{s.SigningKey.PublicFile, newKey.PublicFile}})
				if err := s.Discovery.Restart(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := harness.WaitFor(ctx, 30*time.Second, "the discovery server to serve both keys", func(ctx context.Context) error {
				jwks, err := s.Discovery.JWKS(ctx)
				if err != nil {
					return err
				}
				if n := len(jwks.Keys); n != 2 {
					return fmt.Errorf("JWKS has %d keys (%v), want 2", n, jwksKids(jwks))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}

			after := createPod(t, ctx, s, ns, harness.SimplePod("after", sa))
			checkInjected(t, after, "app")
			newToken, err := harness.RequestToken(ctx, s.APIServer.Client, after)
			if err != nil {
				t.Fatal(err)
			}
			newKid := kidOf(t, newToken)
			if newKid == oldKid {
				t.Fatalf("token after rotation has the old kid %s", oldKid)
			}
			want := []string{oldKid, newKid}
			slices.Sort(want)
			if diff := cmp.Diff(want, servedKids(t, ctx, s)); diff != "" {
				t.Errorf("served kids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, apiServerKids(t, ctx, s)); diff != "" {
				t.Errorf("API server's kids (-want +got):\n%s", diff)
			}

			for name, tc := range map[string]struct {
				pod   string
				token string
			}{"old token": {"before", oldToken}, "new token": {"after", newToken}} {
				t.Run(name, func(t *testing.T) {
					if _, err := verifyLikeAWS(ctx, s, tc.token, harness.DefaultAudience); err != nil {
						t.Errorf("token fails AWS's checks: %v", err)
					}
					pod := before
					if tc.pod == "after" {
						pod = after
					}
					wantObject(t, runClientWithToken(t, ctx, s, pod, "app", tc.token))
				})
			}
		})
	}
}
