package issuer

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Validate reports why s is not an OIDC issuer URL, or nil. An issuer is an
// https URL with a host and no user information, query or fragment (AWS
// IAM and kube-apiserver both refuse those), without a trailing slash, and
// whose host and path are printable ASCII without quotes or wildcards.
//
// The slash is refused because a token's iss must equal the issuer
// character for character (OpenID Connect Core, ID token validation) while
// IAM names the provider by host and path: "https://o.example/" and
// "https://o.example" are different issuers to the token and to the
// discovery paths below them, but one provider to IAM. Plain http is
// refused even for local tests: AWS never fetches it.
func Validate(s string) error {
	_, err := HostPath(s)
	return err
}

// HostPath returns a valid issuer without its scheme: the form IAM uses in
// provider ARNs and condition keys ("oidc.example.com/cluster").
func HostPath(s string) (string, error) {
	if s == "" {
		return "", errors.New("required (e.g. https://oidc.example.com/cluster-1)")
	}
	u, err := ParseHTTPS(s)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(s, "/") {
		return "", fmt.Errorf("%q must not end with /", s)
	}
	hp := u.Host + u.EscapedPath()
	if err := ValidateHostPath(hp); err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return hp, nil
}

// ParseHTTPS parses s as an https URL with a host and no user information,
// query or fragment: an issuer, or a URL AWS fetches below it (jwks_uri).
func ParseHTTPS(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("%q is not an https URL; AWS only fetches https", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q must not contain user information", s)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q must not contain a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("%q must not contain a fragment", s)
	}
	return u, nil
}

// ValidateHostPath refuses, in an issuer's host and path (or the part of a
// provider ARN after oidc-provider/), what would break a policy's JSON keys
// or the ARN: white space, quotes, wildcards, control characters and
// anything outside ASCII.
func ValidateHostPath(hp string) error {
	if hp == "" {
		return errors.New("has no host")
	}
	for _, r := range hp {
		if r > 0x7e {
			// Invalid UTF-8 would print as U+FFFD: a policy for another
			// provider than the one named. Internationalized hosts are
			// written in their punycode (xn--) form.
			return fmt.Errorf("contains %q; an issuer host must be ASCII (use the xn-- form of an internationalized name)", r)
		}
		if r <= ' ' || r == '"' || r == '\\' || r == '*' || r == '?' || r == '$' {
			return fmt.Errorf("contains %q, which an issuer host or path cannot hold", r)
		}
	}
	return nil
}
