package discovery

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Key IDs computed outside this package, with
//
//	openssl pkey -pubin -in F -outform DER | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='
//
// The first is kube-apiserver's own stability vector (TestKeyIDStability in
// kubernetes/pkg/serviceaccount/keyid_test.go), so a change in either
// derivation shows here.
const (
	kidKubeVector = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU"
	kidRSA        = "ekXRQov8X7PByMNT0OhQ0xR_jTOpYWAYshWNwhYxZhI"
	kidEC256      = "qfdJqOicRDEQgV2Jak58gTU10W6dSPbV4kJIb3EX2VU"
	kidEC384      = "DCuxM2GTm5T4w5ueieC0ugSG3pUKPCsP7j9TU0tNKSY"
	kidRotated    = "1ey1JU-zPFfTqOsg8tl-wpdRuXBJ7yzStAQySdW_pVI"
)

func keyFile(name string) string { return filepath.Join("testdata", "keys", name) }

func readKeyFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(keyFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseKeys(t *testing.T) {
	type result struct {
		KIDs  []string
		Algs  []string
		Error string
	}
	tests := map[string]struct {
		file string
		want result
	}{
		"kube-apiserver vector, PKIX":  {file: "kube-apiserver-vector.pub", want: result{KIDs: []string{kidKubeVector}, Algs: []string{"RS256"}}},
		"RSA PKIX public key":          {file: "rsa.pub", want: result{KIDs: []string{kidRSA}, Algs: []string{"RS256"}}},
		"RSA PKCS#1 public key":        {file: "rsa-pkcs1.pub", want: result{KIDs: []string{kidRSA}, Algs: []string{"RS256"}}},
		"RSA PKCS#1 private key":       {file: "rsa-pkcs1.key", want: result{KIDs: []string{kidRSA}, Algs: []string{"RS256"}}},
		"RSA PKCS#8 private key":       {file: "rsa-pkcs8.key", want: result{KIDs: []string{kidRSA}, Algs: []string{"RS256"}}},
		"P-256 PKIX public key":        {file: "ec256.pub", want: result{KIDs: []string{kidEC256}, Algs: []string{"ES256"}}},
		"P-256 SEC 1 with parameters":  {file: "ec256-sec1.key", want: result{KIDs: []string{kidEC256}, Algs: []string{"ES256"}}},
		"P-256 PKCS#8 private key":     {file: "ec256-pkcs8.key", want: result{KIDs: []string{kidEC256}, Algs: []string{"ES256"}}},
		"P-384 PKIX public key":        {file: "ec384.pub", want: result{KIDs: []string{kidEC384}, Algs: []string{"ES384"}}},
		"P-384 SEC 1 private key":      {file: "ec384-sec1.key", want: result{KIDs: []string{kidEC384}, Algs: []string{"ES384"}}},
		"two keys in one file":         {file: "bundle.pub", want: result{KIDs: []string{kidRSA, kidEC256}, Algs: []string{"RS256", "ES256"}}},
		"P-521 is refused":             {file: "ec521-sec1.key", want: result{Error: "PEM block 1 (EC PRIVATE KEY): ECDSA curve P-521 is not supported; use P-256 or P-384"}},
		"RSA 1024 is refused":          {file: "rsa1024.key", want: result{Error: "PEM block 1 (PRIVATE KEY): RSA key is smaller than 2048 bits"}},
		"Ed25519 is refused":           {file: "ed25519.key", want: result{Error: "PEM block 1 (PRIVATE KEY): key type ed25519.PublicKey is not supported; use RSA or ECDSA"}},
		"not PEM":                      {file: "garbage.pem", want: result{Error: "no PEM key block found"}},
		"certificate block":            {file: "certificate.pem", want: result{Error: "PEM block 1 (CERTIFICATE): unsupported PEM block type; want PUBLIC KEY, RSA PUBLIC KEY, RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY"}},
		"bad DER in a PEM block":       {file: "bad-der.pub", want: result{Error: "PEM block 1 (PUBLIC KEY): decode key: "}},
		"text after the last block":    {file: "trailing.pub", want: result{Error: "data after the last PEM block is not PEM"}},
		"encrypted legacy PEM":         {file: "rsa-encrypted-legacy.key", want: result{Error: "PEM block 1 (RSA PRIVATE KEY): encrypted or annotated PEM blocks are not supported"}},
		"encrypted PKCS#8 private key": {file: "rsa-encrypted-pkcs8.key", want: result{Error: "PEM block 1 (ENCRYPTED PRIVATE KEY): unsupported PEM block type"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pubs, err := ParseKeys(readKeyFile(t, tc.file))
			var got result
			if err != nil {
				got.Error = err.Error()
				if tc.want.Error != "" && strings.HasPrefix(got.Error, tc.want.Error) {
					got.Error = tc.want.Error // the rest is the x509 package's wording
				}
				if pubs != nil {
					t.Errorf("keys returned with an error: %v", pubs)
				}
			}
			for _, pub := range pubs {
				k, err := JWK(pub)
				if err != nil {
					t.Fatalf("JWK: %v", err)
				}
				got.KIDs = append(got.KIDs, k.KeyID)
				got.Algs = append(got.Algs, k.Algorithm)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseKeys(%s) (-want +got):\n%s", tc.file, diff)
			}
		})
	}
}

func TestParseKeysKeepsOnlyPublicHalf(t *testing.T) {
	for _, f := range []string{"rsa-pkcs1.key", "rsa-pkcs8.key", "ec256-sec1.key", "ec256-pkcs8.key", "ec384-sec1.key"} {
		pubs, err := ParseKeys(readKeyFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, pub := range pubs {
			switch pub.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
			default:
				t.Errorf("%s: parsed key is %T, want a public key", f, pub)
			}
			if _, ok := pub.(crypto.Signer); ok {
				t.Errorf("%s: parsed key can sign", f)
			}
		}
	}
}

func TestKeyIDDerivation(t *testing.T) {
	// Independently of ParseKeys: SHA-256 over the PKIX DER in the PEM
	// file, unpadded base64url.
	for file, want := range map[string]string{
		"kube-apiserver-vector.pub": kidKubeVector,
		"rsa.pub":                   kidRSA,
		"ec256.pub":                 kidEC256,
		"ec384.pub":                 kidEC384,
		"rsa-rotated.pub":           kidRotated,
	} {
		pubs, err := ParseKeys(readKeyFile(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got, err := KeyID(pubs[0])
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got != want {
			t.Errorf("KeyID(%s) = %q, want %q", file, got, want)
		}
		if strings.ContainsAny(got, "=+/") || len(got) != 43 {
			t.Errorf("KeyID(%s) = %q is not unpadded base64url of 32 bytes", file, got)
		}
	}
}

// privateMembers are the JWK members (RFC 7518) that hold private key
// material.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// assertNoPrivateMaterial fails if body holds a private JWK member anywhere,
// or any of the secret values of the private keys in files.
func assertNoPrivateMaterial(t *testing.T, what string, body []byte, files ...string) {
	t.Helper()
	for _, finding := range privateMaterialIn(body, secretStrings(t, files...)) {
		t.Errorf("%s: %s", what, finding)
	}
}

// privateMaterialIn lists what in body looks like private key material: a
// private JWK member (when body is JSON) or one of the secrets.
func privateMaterialIn(body []byte, secrets []string) []string {
	var findings []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				for _, p := range privateMembers {
					if k == p {
						findings = append(findings, "private JWK member "+k)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err == nil {
		walk(doc)
	}
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			findings = append(findings, "private key bytes")
			break
		}
	}
	return findings
}

// secretStrings are the forms in which the private parts of the keys in
// files could leak: base64url and base64 of each secret number, and each
// base64 line of the PEM bodies.
func secretStrings(t *testing.T, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		data := readKeyFile(t, f)
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
		key, err := parsePrivateForTest(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			nums := [][]byte{k.D.Bytes(), k.Primes[0].Bytes(), k.Primes[1].Bytes(), k.Precomputed.Dp.Bytes(), k.Precomputed.Dq.Bytes(), k.Precomputed.Qinv.Bytes()}
			for _, n := range nums {
				out = append(out, base64.RawURLEncoding.EncodeToString(n), base64.StdEncoding.EncodeToString(n)[:20])
			}
		case *ecdsa.PrivateKey:
			d, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, base64.RawURLEncoding.EncodeToString(d), base64.StdEncoding.EncodeToString(d)[:20])
		default:
			t.Fatalf("%s: %T is not a private key", f, key)
		}
	}
	return out
}
