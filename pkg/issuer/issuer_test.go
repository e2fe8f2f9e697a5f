package issuer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHostPath is the one list of what an issuer may and may not be; the
// discovery, trust-policy and doctor flag tests only check that --issuer is
// named.
func TestHostPath(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    string // the host/path of a valid issuer
		wantErr string // part of the error of an invalid one
	}{
		"host only":                {in: "https://oidc.example.com", want: "oidc.example.com"},
		"host and path":            {in: "https://oidc.example.com/cluster-1", want: "oidc.example.com/cluster-1"},
		"EKS shape":                {in: "https://oidc.eks.us-west-2.amazonaws.com/id/ABCDEF", want: "oidc.eks.us-west-2.amazonaws.com/id/ABCDEF"},
		"port":                     {in: "https://127.0.0.1:8443/cluster-1", want: "127.0.0.1:8443/cluster-1"},
		"punycode host":            {in: "https://xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		"empty":                    {in: "", wantErr: "required"},
		"http":                     {in: "http://127.0.0.1:8443", wantErr: "is not an https URL"},
		"no scheme":                {in: "oidc.example.com", wantErr: "is not an https URL"},
		"not a URL":                {in: "https://a b.example/%zz", wantErr: "is not a URL"},
		"no host":                  {in: "https:///path", wantErr: "has no host"},
		"port without host":        {in: "https://:443", wantErr: "has no host"},
		"user info":                {in: "https://u:p@a.example.com", wantErr: "must not contain user information"},
		"query":                    {in: "https://a.example.com?x=1", wantErr: "must not contain a query"},
		"query after a slash":      {in: "https://o.example.com/?a=b", wantErr: "must not contain a query"},
		"empty query":              {in: "https://a.example.com?", wantErr: "must not contain a query"},
		"fragment":                 {in: "https://a.example.com#f", wantErr: "must not contain a fragment"},
		"empty fragment":           {in: "https://a.example.com#", wantErr: "must not contain a fragment"},
		"trailing slash":           {in: "https://a.example.com/", wantErr: "must not end with /"},
		"trailing slash on a path": {in: "https://a.example.com/cluster-1/", wantErr: "must not end with /"},
		"quote in the host":        {in: `https://o".example`, wantErr: "cannot hold"},
		"wildcard host":            {in: "https://*.example.com", wantErr: "cannot hold"},
		"dollar in the path":       {in: "https://o.example/$x", wantErr: "cannot hold"},
		"unicode host":             {in: "https://bücher.example", wantErr: "must be ASCII"},
		"escaped path stays ASCII": {in: "https://o.example/b%C3%BCcher", want: "o.example/b%C3%BCcher"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := HostPath(tc.in)
			if verr := Validate(tc.in); (verr == nil) != (err == nil) {
				t.Errorf("Validate = %v, HostPath = %v: they disagree", verr, err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("HostPath(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("HostPath(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("HostPath(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestParseHTTPS covers what a URL below the issuer (jwks_uri) may be: the
// issuer's rules less the trailing slash.
func TestParseHTTPS(t *testing.T) {
	for in, ok := range map[string]bool{
		"https://o.example.com/openid/v1/jwks": true,
		"https://o.example.com/keys/":          true,
		"http://o.example.com/keys":            false,
		"https://o.example.com/k#f":            false,
		"https://o.example.com/k?x=1":          false,
		"https://u@o.example.com/k":            false,
	} {
		if _, err := ParseHTTPS(in); (err == nil) != ok {
			t.Errorf("ParseHTTPS(%q) = %v, want ok=%t", in, err, ok)
		}
	}
}
