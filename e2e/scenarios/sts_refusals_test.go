package scenarios

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Scenario 5: the STS refuses what AWS would refuse. Every case starts from
// a setup where the allowed ServiceAccount's own token does read the object,
// so a refusal is the token's fault, not the setup's.
func TestScenario5Refusals(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns = "team-e"
	annotatedServiceAccount(t, ctx, s, ns, "allowed", true)
	annotatedServiceAccount(t, ctx, s, ns, "no-policy", false)
	allowed := createPod(t, ctx, s, ns, harness.SimplePod("allowed", "allowed"))
	good, err := harness.RequestToken(ctx, s.APIServer.Client, allowed)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("control: allowed ServiceAccount reads", func(t *testing.T) {
		wantObject(t, runClientWithToken(t, ctx, s, allowed, "app", good))
	})

	t.Run("ServiceAccount without a policy", func(t *testing.T) {
		pod := createPod(t, ctx, s, ns, harness.SimplePod("no-policy", "no-policy"))
		checkInjected(t, pod, "app")
		token, err := harness.RequestToken(ctx, s.APIServer.Client, pod)
		if err != nil {
			t.Fatal(err)
		}
		// AWS would accept the token itself; the role's trust policy (here
		// the policy named after sub) is what refuses it.
		if _, err := verifyLikeAWS(ctx, s, token, harness.DefaultAudience); err != nil {
			t.Errorf("token of no-policy fails AWS's token checks, want only the policy to refuse it: %v", err)
		}
		wantRefused(t, runClientWithToken(t, ctx, s, pod, "app", token), harness.PolicyName(ns, "no-policy"))
	})

	t.Run("wrong audience", func(t *testing.T) {
		token, err := harness.RequestTokenFor(ctx, s.APIServer.Client, ns, "allowed", "https://kubernetes.default.svc", 3600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyLikeAWS(ctx, s, token, harness.DefaultAudience); err == nil || !strings.Contains(err.Error(), "audience") {
			t.Errorf("verify token for the wrong audience: err = %v, want an audience error", err)
		}
		wantRefused(t, runClientWithToken(t, ctx, s, allowed, "app", token), "must match configured OpenID Client ID")
	})

	// The same claims as the good token, signed by a key the JWKS does not
	// hold: once under the real kid (an impostor), once under a new kid.
	realKid := kidOf(t, good)
	for name, tc := range map[string]struct{ kid, reason string }{
		"foreign key, real kid":    {kid: realKid, reason: "verification error"},
		"foreign key, unknown kid": {kid: "not-a-published-kid", reason: "No public key found for kid"},
	} {
		t.Run(name, func(t *testing.T) {
			forged := resign(t, good, tc.kid)
			if _, err := verifyLikeAWS(ctx, s, forged, harness.DefaultAudience); err == nil {
				t.Error("go-oidc accepted a token signed by a key outside the JWKS")
			}
			wantRefused(t, runClientWithToken(t, ctx, s, allowed, "app", forged), tc.reason)
		})
	}
}

// kidOf returns the kid in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

// resign signs token's exact claims with a fresh RSA key under kid.
func resign(t *testing.T, token, kid string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
