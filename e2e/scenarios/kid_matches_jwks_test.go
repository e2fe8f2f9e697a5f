package scenarios

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Scenario 7: the kid the API server stamps into its tokens is in the JWKS
// the discovery server serves, and the served key set equals the API
// server's own, for both key sources. With --from-apiserver the discovery
// server reads the keys with its own RBAC-bound credentials: the API server
// refuses anonymous requests throughout.
func TestScenario7KidMatchesForBothKeySources(t *testing.T) {
	for name, opts := range keySources {
		t.Run(name, func(t *testing.T) {
			s := harness.StartForTest(t, bins, opts)
			ctx := testContext(t)
			const ns, sa = "team-g", "app"
			annotatedServiceAccount(t, ctx, s, ns, sa, true)

			if code := anonymousStatus(t, ctx, s, "/openid/v1/jwks"); code != http.StatusUnauthorized {
				t.Errorf("anonymous GET of the API server's JWKS: status %d, want 401 (anonymous access off)", code)
			}

			pod := createPod(t, ctx, s, ns, harness.SimplePod("app", sa))
			token, err := harness.RequestToken(ctx, s.APIServer.Client, pod)
			if err != nil {
				t.Fatal(err)
			}
			kid := kidOf(t, token)
			served := servedKids(t, ctx, s)
			if !slices.Contains(served, kid) {
				t.Errorf("token kid %q is not among the served kids %v", kid, served)
			}
			if diff := cmp.Diff(apiServerKids(t, ctx, s), served); diff != "" {
				t.Errorf("served kids differ from the API server's (-apiserver +served):\n%s", diff)
			}
			doc, err := s.Discovery.OpenIDConfiguration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"RS256"}, doc.Algs); diff != "" {
				t.Errorf("id_token_signing_alg_values_supported (-want +got):\n%s", diff)
			}
			if _, err := verifyLikeAWS(ctx, s, token, harness.DefaultAudience); err != nil {
				t.Errorf("token fails AWS's checks: %v", err)
			}
			wantObject(t, runClientWithToken(t, ctx, s, pod, "app", token))
		})
	}
}

// anonymousStatus GETs path from the API server with no credentials.
func anonymousStatus(t *testing.T, ctx context.Context, s *harness.Stack, path string) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI.CertPool()}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIServer.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("anonymous GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
