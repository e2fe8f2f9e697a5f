package certpool

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

func TestParse(t *testing.T) {
	a, err := testcerts.NewCA("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := testcerts.NewCA("b")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := a.Serving(testcerts.ECDSA, "x.example")
	if err != nil {
		t.Fatal(err)
	}
	truncated := a.PEM[:len(a.PEM)/2]
	tests := map[string]struct {
		in      []byte
		want    int    // certificates in a valid bundle
		wantErr string // part of the error otherwise
	}{
		"one":                {in: a.PEM, want: 1},
		"two":                {in: append(append([]byte{}, a.PEM...), b.PEM...), want: 2},
		"text around":        {in: append([]byte("# roots\n"), append(append([]byte{}, a.PEM...), "trailing\n"...)...), want: 1},
		"empty":              {in: nil, wantErr: "holds no PEM certificate"},
		"not PEM":            {in: []byte("not a certificate"), wantErr: "holds no PEM certificate"},
		"truncated":          {in: truncated, wantErr: "holds no PEM certificate"},
		"a key after the CA": {in: append(append([]byte{}, a.PEM...), pair.KeyPEM...), wantErr: "PEM block 2 is a"},
		"garbage in a CERT":  {in: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), wantErr: "PEM block 1:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %d certificates, %v; want an error containing %q", len(got), err, tc.wantErr)
				}
				if bytes.Contains([]byte(err.Error()), []byte("PRIVATE KEY-----")) {
					t.Errorf("error holds the bundle: %v", err)
				}
				pool := a.Pool()
				if err := Append(pool, tc.in); err == nil {
					t.Error("Append accepted what Parse refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("Parse = %d certificates, want %d", len(got), tc.want)
			}
			pool, err := New(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pair.Cert.Verify(x509VerifyOptions(pool)); err != nil {
				t.Errorf("a certificate signed by the bundle's CA does not verify: %v", err)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	ca, err := testcerts.NewCA("a")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.crt")
	key := filepath.Join(dir, "key.pem")
	big := filepath.Join(dir, "big.pem")
	for path, data := range map[string][]byte{
		good: ca.PEM,
		key:  []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"),
		big:  bytes.Repeat(ca.PEM, MaxFileBytes/len(ca.PEM)+1),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if data, err := ReadFile(good); err != nil || !bytes.Equal(data, ca.PEM) {
		t.Errorf("ReadFile(good) = %d bytes, %v", len(data), err)
	}
	if _, err := LoadFile(good); err != nil {
		t.Errorf("LoadFile(good): %v", err)
	}
	for path, want := range map[string]string{
		key:                          "is a \"PRIVATE KEY\"",
		big:                          "larger than",
		filepath.Join(dir, "absent"): "no such file",
	} {
		_, err := LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadFile(%s) = %v, want an error containing %q", filepath.Base(path), err, want)
		}
		if err != nil && strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("error holds the file's content: %v", err)
		}
	}
}

func x509VerifyOptions(roots *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, DNSName: "x.example"}
}
