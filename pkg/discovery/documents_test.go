package discovery

import (
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestRenderConfig(t *testing.T) {
	tests := map[string]struct {
		files   []string
		jwksURI string
		want    string
	}{
		"RSA only": {
			files:   []string{"rsa.pub"},
			jwksURI: testIssuer + JWKSPath,
			want:    `{"issuer":"https://oidc.example.com/cluster-1","jwks_uri":"https://oidc.example.com/cluster-1/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"],"claims_supported":["aud","exp","iat","iss","jti","kubernetes.io","nbf","sub"]}`,
		},
		"algorithms of every key, sorted and once": {
			files:   []string{"rsa.pub", "ec384.pub", "ec256-sec1.key", "rsa-rotated.pub"},
			jwksURI: "https://cdn.example.com/jwks.json",
			want:    `{"issuer":"https://oidc.example.com/cluster-1","jwks_uri":"https://cdn.example.com/jwks.json","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256","ES384","RS256"],"claims_supported":["aud","exp","iat","iss","jti","kubernetes.io","nbf","sub"]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := Render(testIssuer, tc.jwksURI, jwksFromFiles(t, tc.files...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(docs.Config)); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderJWKS(t *testing.T) {
	// The same key from a public and a private file is served once, in
	// first-seen order.
	docs, err := Render(testIssuer, testIssuer+JWKSPath, jwksFromFiles(t, "rsa.pub", "ec256.pub", "rsa-pkcs8.key", "ec384-sec1.key"))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(docs.JWKS, &set); err != nil {
		t.Fatal(err)
	}
	type member struct{ Kty, Alg, Use, Kid, Crv string }
	var got []member
	for _, k := range set.Keys {
		got = append(got, member{k["kty"], k["alg"], k["use"], k["kid"], k["crv"]})
		wantFields := []string{"alg", "e", "kid", "kty", "n", "use"}
		if k["kty"] == "EC" {
			wantFields = []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
		}
		var fields []string
		for f := range k {
			fields = append(fields, f)
		}
		if diff := cmp.Diff(wantFields, fields, cmpSorted); diff != "" {
			t.Errorf("members of key %s (-want +got):\n%s", k["kid"], diff)
		}
	}
	want := []member{
		{"RSA", "RS256", "sig", kidRSA, ""},
		{"EC", "ES256", "sig", kidEC256, "P-256"},
		{"EC", "ES384", "sig", kidEC384, "P-384"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JWKS keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{kidRSA, kidEC256, kidEC384}, docs.KeyIDs); diff != "" {
		t.Errorf("KeyIDs (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sorted", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestRenderRefuses(t *testing.T) {
	rsa := jwksFromFiles(t, "rsa.pub")[0]
	ec := jwksFromFiles(t, "ec256.pub")[0]
	private, err := parsePrivateForTest(readKeyFile(t, "rsa-pkcs1.key"))
	if err != nil {
		t.Fatal(err)
	}
	sameKidOtherKey := ec
	sameKidOtherKey.KeyID = rsa.KeyID
	noKid := rsa
	noKid.KeyID = ""
	tests := map[string]struct {
		keys []jose.JSONWebKey
		want string
	}{
		"no keys":               {keys: nil, want: "no keys to publish"},
		"a private key":         {keys: []jose.JSONWebKey{{Key: private, KeyID: "x", Algorithm: "RS256", Use: "sig"}}, want: "key x is not a public key"},
		"two keys with one kid": {keys: []jose.JSONWebKey{rsa, sameKidOtherKey}, want: "two different keys have kid " + kidRSA},
		"a key without kid":     {keys: []jose.JSONWebKey{noKid}, want: "key 1 has no kid"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := Render(testIssuer, testIssuer+JWKSPath, tc.keys)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Render error = %v, want %q", err, tc.want)
			}
			if docs != nil {
				t.Errorf("documents returned with an error")
			}
		})
	}
}

func TestPrivateKeyFilesServeOnlyPublicKeys(t *testing.T) {
	files := []string{"rsa-pkcs1.key", "rsa-pkcs8.key", "ec256-sec1.key", "ec256-pkcs8.key", "ec384-sec1.key"}
	docs, err := Render(testIssuer, testIssuer+JWKSPath, jwksFromFiles(t, files...))
	if err != nil {
		t.Fatal(err)
	}
	assertNoPrivateMaterial(t, "JWKS", docs.JWKS, files...)
	assertNoPrivateMaterial(t, "configuration", docs.Config, files...)
	if !strings.Contains(string(docs.JWKS), kidRSA) || !strings.Contains(string(docs.JWKS), kidEC384) {
		t.Errorf("JWKS lacks the expected kids: %s", docs.JWKS)
	}
}

// TestAssertNoPrivateMaterialCatchesLeaks proves the check above can fail.
func TestAssertNoPrivateMaterialCatchesLeaks(t *testing.T) {
	private, err := parsePrivateForTest(readKeyFile(t, "rsa-pkcs1.key"))
	if err != nil {
		t.Fatal(err)
	}
	leak, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: private, KeyID: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := secretStrings(t, "rsa-pkcs1.key")
	got := privateMaterialIn(leak, secrets)
	want := []string{"private JWK member d", "private JWK member dp", "private JWK member dq", "private JWK member p", "private JWK member q", "private JWK member qi", "private key bytes"}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("findings in a JWKS holding the private key (-want +got):\n%s", diff)
	}
	if got := privateMaterialIn(readKeyFile(t, "rsa-pkcs1.key"), secrets); len(got) == 0 {
		t.Errorf("the PEM private key itself passed the check")
	}
}
