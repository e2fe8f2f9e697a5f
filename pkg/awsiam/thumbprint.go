package awsiam

import (
	"context"
	"crypto/sha1" //nolint:gosec // IAM identifies provider certificates by their SHA-1 fingerprint.
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ThumbprintAddress turns an https URL or a bare host[:port] into the
// host:port to connect to (port 443 unless given) and the host name to
// verify.
func ThumbprintAddress(target string) (addr, host string, err error) {
	if target == "" {
		return "", "", fmt.Errorf("is empty; give the issuer URL, e.g. https://oidc.example.com")
	}
	hostport := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return "", "", fmt.Errorf("%q is not a URL: %w", target, err)
		}
		if u.Scheme != "https" {
			return "", "", fmt.Errorf("%q is not an https URL; AWS only fetches discovery documents over https", target)
		}
		hostport = u.Host
	} else if strings.ContainsAny(target, "/?#") {
		return "", "", fmt.Errorf("%q is neither an https URL nor a host[:port]", target)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), "443"
	}
	if host == "" {
		return "", "", fmt.Errorf("%q has no host", target)
	}
	return net.JoinHostPort(host, port), host, nil
}

// Certificate describes one certificate of a presented chain.
type Certificate struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	IsCA     bool      `json:"isCA"`
	NotAfter time.Time `json:"notAfter"`
	// SHA1 is the certificate's SHA-1 fingerprint as IAM takes it: 40
	// lower case hex digits, no colons.
	SHA1 string `json:"sha1"`
}

// ThumbprintResult is the thumbprint and where it came from.
type ThumbprintResult struct {
	Address    string `json:"address"`
	Thumbprint string `json:"thumbprint"`
	// Certificate is the one the thumbprint is of.
	Certificate Certificate `json:"certificate"`
	// Chain is every certificate the server presented, leaf first.
	Chain []Certificate `json:"chain"`
	// JWKS is the thumbprint of the jwks_uri host (IssuerThumbprints), when
	// that is another host than the issuer's.
	JWKS *ThumbprintResult `json:"jwks,omitempty"`
}

// Thumbprints lists the distinct thumbprints of r, the issuer's first: the
// ThumbprintList to give IAM.
func (r *ThumbprintResult) Thumbprints() []string {
	list := []string{r.Thumbprint}
	if r.JWKS != nil && r.JWKS.Thumbprint != r.Thumbprint {
		list = append(list, r.JWKS.Thumbprint)
	}
	return list
}

// Fingerprint is the SHA-1 of a certificate's DER bytes in the form IAM's
// ThumbprintList takes: 40 lower case hex digits.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // IAM's format, not a security decision.
	return hex.EncodeToString(sum[:])
}

// Thumbprint connects to target over TLS and returns the thumbprint IAM asks
// for when an OIDC identity provider is created for it.
//
// Which certificate: AWS's procedure ("Obtain the thumbprint for an OpenID
// Connect identity provider", IAM User Guide) connects with
// `openssl s_client -showcerts`, takes the last certificate displayed, which
// it calls the top intermediate CA of the chain, and takes its SHA-1
// fingerprint with the colons removed. This does that: the last certificate
// of the chain as the server presents it. IAM wants a CA's thumbprint (it
// then trusts whatever that CA issues for the host, across renewals), so
// when a server presents only its own certificate, the thumbprint is of the
// CA that verified it, the top of the verified chain, and not of a leaf
// that changes at every renewal.
//
// The chain must verify for target's host name against roots (nil: the
// system's trusted roots): a thumbprint of a chain nobody checked could be
// an attacker's.
func Thumbprint(ctx context.Context, target string, roots *x509.CertPool) (*ThumbprintResult, error) {
	addr, host, err := ThumbprintAddress(target)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{Config: &tls.Config{
		ServerName: host,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, explainTLSError(addr, roots != nil, err)
	}
	defer func() { _ = conn.Close() }()
	state := conn.(*tls.Conn).ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return nil, fmt.Errorf("tls handshake with %s: the server presented no certificate", addr)
	}
	res := &ThumbprintResult{Address: addr}
	for _, c := range state.PeerCertificates {
		res.Chain = append(res.Chain, Certificate{
			Subject:  c.Subject.String(),
			Issuer:   c.Issuer.String(),
			IsCA:     c.IsCA,
			NotAfter: c.NotAfter.UTC(),
			SHA1:     Fingerprint(c),
		})
	}
	res.Certificate = res.Chain[len(res.Chain)-1]
	if last := state.PeerCertificates[len(state.PeerCertificates)-1]; !last.IsCA && len(state.VerifiedChains) > 0 {
		verified := state.VerifiedChains[0]
		top := verified[len(verified)-1]
		res.Certificate = Certificate{
			Subject:  top.Subject.String(),
			Issuer:   top.Issuer.String(),
			IsCA:     top.IsCA,
			NotAfter: top.NotAfter.UTC(),
			SHA1:     Fingerprint(top),
		}
	}
	res.Thumbprint = res.Certificate.SHA1
	return res, nil
}

// IssuerThumbprints follows AWS's procedure for an issuer: the thumbprint
// of target's host and, when target is an https URL whose discovery
// document names a jwks_uri on another host, that host's too (JWKS), since
// AWS then checks both. A bare host[:port] is no issuer and is
// thumbprinted alone.
func IssuerThumbprints(ctx context.Context, target string, roots *x509.CertPool) (*ThumbprintResult, error) {
	res, err := Thumbprint(ctx, target, roots)
	if err != nil || !strings.HasPrefix(target, "https://") {
		return res, err
	}
	jwksURI, err := discoveryJWKSURI(ctx, target, roots)
	if err != nil {
		return nil, err
	}
	addr, _, err := ThumbprintAddress(jwksURI)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri of %s: %w", target, err)
	}
	if addr != res.Address {
		if res.JWKS, err = Thumbprint(ctx, jwksURI, roots); err != nil {
			return nil, fmt.Errorf("jwks_uri %s: %w", jwksURI, err)
		}
	}
	return res, nil
}

// HTTPSOnlyRedirects is an http.Client CheckRedirect that follows at most 10
// redirects and none that leaves https: AWS fetches the discovery documents
// over https only, so a document reached through plain HTTP proves nothing
// about what AWS gets, and whoever is on the path could have written it.
func HTTPSOnlyRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return fmt.Errorf("%s redirects to %s, which is not https; AWS fetches discovery documents over https only", via[len(via)-1].URL.Redacted(), req.URL.Redacted())
	}
	if len(via) >= 10 {
		return fmt.Errorf("%s: stopped after 10 redirects", via[0].URL.Redacted())
	}
	return nil
}

// explainTLSError turns a failed dial or handshake into an error that says
// what to do.
func explainTLSError(addr string, customRoots bool, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hostErr):
		return fmt.Errorf("certificate of %s is not valid for that host name: %w; connect with a host name the certificate names", addr, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("certificate chain of %s is not valid: %w", addr, err)
	case errors.As(err, &unknown), errors.As(err, &verify):
		if customRoots {
			return fmt.Errorf("certificate chain of %s does not verify against --ca-file: %w; pass the CA that signed the chain", addr, err)
		}
		return fmt.Errorf("certificate chain of %s does not verify against the system's trusted roots: %w; for a private CA pass it with --ca-file", addr, err)
	}
	return fmt.Errorf("connect to %s: %w", addr, err)
}

// discoveryJWKSURI reads the jwks_uri of issuer's discovery document.
func discoveryJWKSURI(ctx context.Context, issuer string, roots *x509.CertPool) (string, error) {
	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: HTTPSOnlyRedirects,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", fmt.Errorf("discovery document %s: %w", docURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery document %s: %w", docURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery document %s: HTTP %s; is the URL the issuer?", docURL, resp.Status)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("discovery document %s: not JSON: %w", docURL, err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery document %s has no jwks_uri", docURL)
	}
	return doc.JWKSURI, nil
}
