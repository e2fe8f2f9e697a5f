package discovery

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func bundle(t *testing.T, td string, keys map[string]crypto.PublicKey) *jwtbundle.Bundle {
	t.Helper()
	return jwtbundle.FromJWTAuthorities(spiffeid.RequireTrustDomainFromString(td), keys)
}

func TestSPIFFESourceKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	example := bundle(t, "example.org", map[string]crypto.PublicKey{"spire-kid-2": ecKey.Public(), "spire-kid-1": rsaKey.Public()})
	other := bundle(t, "other.org", map[string]crypto.PublicKey{"o": rsaKey.Public()})
	type key struct{ KID, Alg, Use string }
	cases := map[string]struct {
		td      string
		set     *jwtbundle.Set
		want    []key
		wantErr string
	}{
		"only bundle, SPIRE's kids kept": {"", jwtbundle.NewSet(example), []key{{"spire-kid-1", "RS256", "sig"}, {"spire-kid-2", "ES256", "sig"}}, ""},
		"picked trust domain":            {"other.org", jwtbundle.NewSet(example, other), []key{{"o", "RS256", "sig"}}, ""},
		"several, none picked":           {"", jwtbundle.NewSet(example, other), nil, "JWT bundles for 2 trust domains"},
		"picked one missing":             {"missing.org", jwtbundle.NewSet(example), nil, `no JWT bundle for trust domain "missing.org"`},
		"empty bundle":                   {"", jwtbundle.NewSet(bundle(t, "example.org", nil)), nil, "has no keys"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &SPIFFESource{}
			if tc.td != "" {
				s.TrustDomain = spiffeid.RequireTrustDomainFromString(tc.td)
			}
			keys, err := s.Keys(tc.set)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []key
			for _, k := range keys {
				if !k.IsPublic() {
					t.Errorf("key %s is not public", k.KeyID)
				}
				got = append(got, key{k.KeyID, k.Algorithm, k.Use})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// pushClient serves one bundle set on Fetch and lets the test push updates
// to watchers, as the agent's stream does on rotation.
type pushClient struct {
	mu       sync.Mutex
	set      *jwtbundle.Set
	watchers chan workloadapi.JWTBundleWatcher
}

func (c *pushClient) FetchJWTBundles(context.Context) (*jwtbundle.Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set, nil
}

func (c *pushClient) WatchJWTBundles(ctx context.Context, w workloadapi.JWTBundleWatcher) error {
	c.watchers <- w
	<-ctx.Done()
	return ctx.Err()
}

// A pushed rotation is served at once, not at the next interval.
func TestSPIFFESourceServesPushedRotation(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	first := jwtbundle.NewSet(bundle(t, "example.org", map[string]crypto.PublicKey{"k1": k1.Public()}))
	client := &pushClient{set: first, watchers: make(chan workloadapi.JWTBundleWatcher, 1)}
	pub := NewPublisher("https://oidc.example.com/spire", "https://oidc.example.com/spire/keys", PublisherOptions{})
	s := &SPIFFESource{Client: client, Interval: time.Hour, Publisher: pub}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitKIDs(t, pub, []string{"k1"})
	w := <-client.watchers
	w.OnJWTBundlesUpdate(jwtbundle.NewSet(bundle(t, "example.org", map[string]crypto.PublicKey{"k1": k1.Public(), "k2": k2.Public()})))
	waitKIDs(t, pub, []string{"k1", "k2"})
}

func waitKIDs(t *testing.T, pub *Publisher, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		if d := pub.Documents(); d != nil {
			got = d.KeyIDs
		}
		if cmp.Equal(want, got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("served kids %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
