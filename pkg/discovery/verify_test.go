package discovery

import (
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestServedJWKSVerifiesTokens signs a token as kube-apiserver does (the
// private key, kid header = KeyID of its public half, RS256 or ES256) and
// verifies it the way a relying party does: look the kid up in the served
// JWKS, check the signature with the algorithm the key names.
func TestServedJWKSVerifiesTokens(t *testing.T) {
	files := []string{"rsa-pkcs1.key", "ec256-sec1.key"}
	docs, err := Render(testIssuer, testIssuer+JWKSPath, jwksFromFiles(t, files...))
	if err != nil {
		t.Fatal(err)
	}
	var served jose.JSONWebKeySet
	if err := json.Unmarshal(docs.JWKS, &served); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		private, err := parsePrivateForTest(readKeyFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		pubs, err := ParseKeys(readKeyFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		kid, err := KeyID(pubs[0])
		if err != nil {
			t.Fatal(err)
		}
		alg, err := Algorithm(pubs[0])
		if err != nil {
			t.Fatal(err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: private}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		want := jwt.Claims{Issuer: testIssuer, Subject: "system:serviceaccount:default:app", Audience: jwt.Audience{"sts.amazonaws.com"}}
		token, err := jwt.Signed(signer).Claims(want).Serialize()
		if err != nil {
			t.Fatal(err)
		}

		parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384})
		if err != nil {
			t.Fatal(err)
		}
		keys := served.Key(parsed.Headers[0].KeyID)
		if len(keys) != 1 {
			t.Fatalf("%s: served JWKS has %d keys with the token's kid %q", f, len(keys), parsed.Headers[0].KeyID)
		}
		if keys[0].Algorithm != string(alg) {
			t.Errorf("%s: served alg %s, token signed with %s", f, keys[0].Algorithm, alg)
		}
		var got jwt.Claims
		if err := parsed.Claims(keys[0].Key, &got); err != nil {
			t.Fatalf("%s: token does not verify with the served key: %v", f, err)
		}
		if got.Subject != want.Subject || got.Issuer != want.Issuer {
			t.Errorf("%s: claims %+v", f, got)
		}
	}
	// The kid of a key that is not served finds nothing.
	if len(served.Key(kidRotated)) != 0 {
		t.Error("a key that is not served was found")
	}
}
