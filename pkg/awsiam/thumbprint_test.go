package awsiam

import (
	"context"
	"crypto/sha1" //nolint:gosec // the format under test
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var thumbprintFormat = regexp.MustCompile(`^[0-9a-f]{40}$`)

// sha1Hex is an independent computation of the expected thumbprint.
func sha1Hex(c *testCert) string {
	sum := sha1.Sum(c.cert.Raw) //nolint:gosec
	return hex.EncodeToString(sum[:])
}

func TestThumbprint(t *testing.T) {
	root := newCert(t, "test root", true, nil)
	inter := newCert(t, "test intermediate", true, root)
	leafOfInter := newCert(t, "leaf via intermediate", false, inter)
	leafOfRoot := newCert(t, "leaf of root", false, root)
	otherRoot := newCert(t, "other root", true, nil)

	tests := map[string]struct {
		leaf    *testCert
		chain   []*testCert
		caFile  []*testCert
		want    *testCert // the certificate whose fingerprint is expected
		wantErr string
	}{
		"root, intermediate, leaf: the intermediate": {
			leaf: leafOfInter, chain: []*testCert{inter}, caFile: []*testCert{root}, want: inter,
		},
		"server also presents its root: the last presented, the root": {
			leaf: leafOfInter, chain: []*testCert{inter, root}, caFile: []*testCert{root}, want: root,
		},
		"leaf only: the CA that verified it, not the leaf": {
			leaf: leafOfRoot, caFile: []*testCert{root}, want: root,
		},
		"chain from another CA than --ca-file": {
			leaf: leafOfInter, chain: []*testCert{inter}, caFile: []*testCert{otherRoot},
			wantErr: "does not verify against --ca-file",
		},
		"intermediate missing from the presented chain": {
			leaf: leafOfInter, caFile: []*testCert{root},
			wantErr: "does not verify against --ca-file",
		},
		"private CA without --ca-file": {
			leaf: leafOfInter, chain: []*testCert{inter},
			wantErr: "for a private CA pass it with --ca-file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := serveTLS(t, tc.leaf, tc.chain...)
			var roots *x509.CertPool
			if tc.caFile != nil {
				roots = poolOf(tc.caFile...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The host's own chain; TestThumbprintDiscovery covers the issuer.
			got, err := Thumbprint(ctx, srv.URL+"/some/issuer/path", roots)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !thumbprintFormat.MatchString(got.Thumbprint) {
				t.Errorf("thumbprint %q is not 40 lower case hex digits", got.Thumbprint)
			}
			if diff := cmp.Diff(sha1Hex(tc.want), got.Thumbprint); diff != "" {
				t.Errorf("thumbprint (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want.cert.Subject.String(), got.Certificate.Subject); diff != "" {
				t.Errorf("certificate subject (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(1+len(tc.chain), len(got.Chain)); diff != "" {
				t.Errorf("chain length (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThumbprintAddress(t *testing.T) {
	tests := map[string]struct {
		in, addr, host, wantErr string
	}{
		"issuer URL":       {in: "https://oidc.example.com/cluster", addr: "oidc.example.com:443", host: "oidc.example.com"},
		"URL with port":    {in: "https://127.0.0.1:8443/", addr: "127.0.0.1:8443", host: "127.0.0.1"},
		"bare host":        {in: "oidc.example.com", addr: "oidc.example.com:443", host: "oidc.example.com"},
		"bare host:port":   {in: "oidc.example.com:8443", addr: "oidc.example.com:8443", host: "oidc.example.com"},
		"IPv6 URL":         {in: "https://[::1]:8443", addr: "[::1]:8443", host: "::1"},
		"http URL":         {in: "http://oidc.example.com", wantErr: "not an https URL"},
		"empty":            {in: "", wantErr: "is empty"},
		"host with a path": {in: "oidc.example.com/x", wantErr: "neither an https URL nor a host"},
		"URL with no host": {in: "https:///x", wantErr: "has no host"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr, host, err := ThumbprintAddress(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.addr, tc.host}, []string{addr, host}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestThumbprintDiscovery(t *testing.T) {
	root := newCert(t, "test root", true, nil)
	interA := newCert(t, "issuer intermediate", true, root)
	interB := newCert(t, "keys intermediate", true, root)
	keys := serveTLS(t, newCert(t, "keys host", false, interB), interB)

	tests := map[string]struct {
		jwksURI func(issuerURL string) string
		moved   string // not empty: /c1's document redirects there
		want    []*testCert
		wantErr string
	}{
		"jwks_uri on another host: both thumbprints": {
			jwksURI: func(string) string { return keys.URL + "/openid/v1/jwks" },
			want:    []*testCert{interA, interB},
		},
		"jwks_uri on the issuer's host: one thumbprint": {
			jwksURI: func(issuer string) string { return issuer + "/openid/v1/jwks" },
			want:    []*testCert{interA},
		},
		"no jwks_uri": {
			jwksURI: func(string) string { return "" },
			wantErr: "has no jwks_uri",
		},
		"jwks_uri over plain http": {
			jwksURI: func(string) string { return "http://127.0.0.1:1/keys" },
			wantErr: `"http://127.0.0.1:1/keys" is not an https URL`,
		},
		"discovery document redirects to plain http": {
			moved:   "http://127.0.0.1:1/.well-known/openid-configuration",
			wantErr: "/c1/.well-known/openid-configuration redirects to http://127.0.0.1:1/.well-known/openid-configuration, which is not https",
		},
		"discovery document redirects on https": {
			moved:   "/c2/.well-known/openid-configuration",
			jwksURI: func(issuer string) string { return keys.URL + "/openid/v1/jwks" },
			want:    []*testCert{interA, interB},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var issuer string
			leaf := newCert(t, "issuer host", false, interA)
			raw := [][]byte{leaf.cert.Raw, interA.cert.Raw}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/c1/.well-known/openid-configuration" && tc.moved != "":
					http.Redirect(w, r, tc.moved, http.StatusFound)
					return
				case r.URL.Path != "/c1/.well-known/openid-configuration" && r.URL.Path != "/c2/.well-known/openid-configuration":
					http.NotFound(w, r)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": tc.jwksURI(issuer)})
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: raw, PrivateKey: leaf.key}}}
			srv.StartTLS()
			defer srv.Close()
			issuer = srv.URL + "/c1"

			res, err := IssuerThumbprints(context.Background(), issuer, poolOf(root))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, c := range tc.want {
				want = append(want, sha1Hex(c))
			}
			if diff := cmp.Diff(want, res.Thumbprints()); diff != "" {
				t.Errorf("thumbprints (-want +got):\n%s", diff)
			}
		})
	}
}

// A bare host[:port] is no issuer: it is thumbprinted as it is, and
// nothing is fetched from it.
func TestThumbprintBareHostSkipsDiscovery(t *testing.T) {
	root := newCert(t, "test root", true, nil)
	inter := newCert(t, "test intermediate", true, root)
	srv := serveTLS(t, newCert(t, "host", false, inter), inter) // answers every path with an empty 200
	res, err := IssuerThumbprints(context.Background(), strings.TrimPrefix(srv.URL, "https://"), poolOf(root))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{sha1Hex(inter)}, res.Thumbprints()); diff != "" {
		t.Errorf("thumbprints (-want +got):\n%s", diff)
	}
}
