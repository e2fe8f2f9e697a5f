package discovery

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzParseKeys: any input either yields supported public keys that render
// into a JWKS without private members, or an error that quotes nothing of
// the input. When the input holds a private key, none of its secret numbers
// appears in the error or the documents. Seeds: testdata/fuzz/FuzzParseKeys.
func FuzzParseKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets := fuzzSecrets(data)
		pubs, err := ParseKeys(data)
		if err != nil {
			if pubs != nil {
				t.Fatal("keys returned with an error")
			}
			assertErrorQuotesNoInput(t, err, data)
			if found := privateMaterialIn([]byte(err.Error()), secrets); len(found) > 0 {
				t.Fatalf("error holds private key material: %v", found)
			}
			return
		}
		if len(pubs) == 0 {
			t.Fatal("no keys and no error")
		}
		keys := make([]jose.JSONWebKey, 0, len(pubs))
		for _, pub := range pubs {
			k, err := JWK(pub)
			if err != nil {
				t.Fatalf("parsed key has no JWK: %v", err)
			}
			keys = append(keys, k)
		}
		docs, err := Render(testIssuer, testIssuer+JWKSPath, keys)
		if err != nil {
			t.Fatalf("parsed keys do not render: %v", err)
		}
		checkRenderedJWKS(t, docs)
		for _, doc := range [][]byte{docs.JWKS, docs.Config} {
			if found := privateMaterialIn(doc, secrets); len(found) > 0 {
				t.Fatalf("documents hold private key material: %v", found)
			}
		}
	})
}

// FuzzAPIServerResponse: any pair of API server responses either gives an
// issuer and keys that render into a public JWKS, or errors; never a panic,
// never private members, never an empty key set. Seeds:
// testdata/fuzz/FuzzAPIServerResponse.
func FuzzAPIServerResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, config, jwks []byte) {
		if issuer, err := ParseProviderConfig(config); err == nil && issuer == "" {
			t.Fatal("empty issuer accepted")
		}
		secrets := privateMemberValues(jwks)
		keys, err := ParseJWKS(jwks)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error repeats a private JWK member: %v", err)
				}
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("empty key set accepted")
		}
		for _, k := range keys {
			if !k.IsPublic() {
				t.Fatal("private key accepted")
			}
		}
		docs, err := Render(testIssuer, testIssuer+JWKSPath, keys)
		if err != nil {
			if strings.HasPrefix(err.Error(), "two different keys have kid ") {
				return
			}
			t.Fatalf("accepted keys do not render: %v", err)
		}
		checkRenderedJWKS(t, docs)
	})
}

// fuzzSecrets lists the encodings of the secret numbers of the private key
// in data, if any; numbers too short to be told from chance are left out.
func fuzzSecrets(data []byte) []string {
	key, err := parsePrivateForTest(data)
	if err != nil {
		return nil
	}
	var nums [][]byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		nums = append(nums, k.D.Bytes())
		for _, p := range k.Primes {
			nums = append(nums, p.Bytes())
		}
	case *ecdsa.PrivateKey:
		if d, err := k.Bytes(); err == nil {
			nums = append(nums, d)
		}
	case ed25519.PrivateKey:
		nums = append(nums, k.Seed())
	}
	var out []string
	for _, n := range nums {
		if len(n) >= 16 {
			out = append(out, base64.RawURLEncoding.EncodeToString(n), base64.StdEncoding.EncodeToString(n)[:20])
		}
	}
	return out
}

// privateMemberValues lists the values of private members of the keys of a
// JWKS-shaped input that are long enough to be told from chance.
func privateMemberValues(jwks []byte) []string {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if json.Unmarshal(jwks, &set) != nil {
		return nil
	}
	var out []string
	for _, k := range set.Keys {
		for _, m := range privateMembers {
			if v, ok := k[m].(string); ok && len(v) >= 16 {
				out = append(out, v)
			}
		}
	}
	return out
}

func checkRenderedJWKS(t *testing.T, docs *Documents) {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(docs.JWKS, &set); err != nil {
		t.Fatalf("rendered JWKS is not JSON: %v", err)
	}
	if len(set.Keys) == 0 {
		t.Fatal("empty JWKS rendered")
	}
	for _, k := range set.Keys {
		for _, p := range privateMembers {
			if _, ok := k[p]; ok {
				t.Fatalf("rendered JWKS has private member %q", p)
			}
		}
		switch k["alg"] {
		case "RS256", "ES256", "ES384":
		default:
			t.Fatalf("rendered alg %v", k["alg"])
		}
		if k["use"] != "sig" || k["kid"] == "" {
			t.Fatalf("rendered key without use sig or kid: %v", k)
		}
	}
}

// assertErrorQuotesNoInput fails when err repeats a run of the input's
// base64 body, which could be key material.
func assertErrorQuotesNoInput(t *testing.T, err error, data []byte) {
	t.Helper()
	msg := err.Error()
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) >= 24 && !bytes.HasPrefix(line, []byte("-----")) && strings.Contains(msg, string(line)) {
			t.Fatalf("error quotes the input: %v", errors.Unwrap(err))
		}
	}
}
