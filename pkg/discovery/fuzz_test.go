package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzParseKeys: any input either yields supported public keys that render
// into a JWKS without private members, or an error that quotes nothing of
// the input. Seeds: testdata/fuzz/FuzzParseKeys.
func FuzzParseKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pubs, err := ParseKeys(data)
		if err != nil {
			if pubs != nil {
				t.Fatal("keys returned with an error")
			}
			assertErrorQuotesNoInput(t, err, data)
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
		keys, err := ParseJWKS(jwks)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
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
