package scenarios

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// keySources are the discovery server's two ways to learn the signing keys.
// The API server source refreshes every second here so rotation shows
// quickly; the tests still wait on the served documents, not on time.
var keySources = map[string]harness.Options{
	"key-file":       {},
	"from-apiserver": {DiscoveryFromAPIServer: true, DiscoveryArgs: []string{"--refresh-interval=1s"}},
}

// servedKids returns the kids of the JWKS the discovery server serves.
func servedKids(t *testing.T, ctx context.Context, s *harness.Stack) []string {
	t.Helper()
	jwks, err := s.Discovery.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return jwksKids(jwks)
}

func jwksKids(jwks *harness.JWKS) []string {
	var kids []string
	for _, k := range jwks.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// apiServerKids returns the kids of the API server's own /openid/v1/jwks,
// read with admin credentials.
func apiServerKids(t *testing.T, ctx context.Context, s *harness.Stack) []string {
	t.Helper()
	body, err := s.APIServer.Client.Discovery().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatalf("get the API server's JWKS: %v", err)
	}
	var jwks harness.JWKS
	if err := json.Unmarshal(body, &jwks); err != nil {
		t.Fatalf("decode the API server's JWKS: %v", err)
	}
	return jwksKids(&jwks)
}
