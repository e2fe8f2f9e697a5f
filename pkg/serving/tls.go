package serving

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// DefaultCipherSuites are the TLS 1.2 suites offered by default: forward
// secret AEAD suites only. TLS 1.3 suites are not configurable in Go and
// are all modern.
var DefaultCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// TLSVersion maps "1.2" or "1.3" to its crypto/tls constant.
func TLSVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not a supported TLS version (1.2 or 1.3)", s)
}

// CipherSuites maps IANA TLS 1.2 suite names to their IDs. Only suites Go
// considers secure are accepted, and of those neither CBC suites (padding
// oracles, no AEAD) nor those whose MAC is SHA-1.
func CipherSuites(names []string) ([]uint16, error) {
	ids := make([]uint16, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == n })
		switch {
		case i < 0:
			return nil, fmt.Errorf("%q is not a secure TLS 1.2 cipher suite name", n)
		case strings.Contains(n, "_CBC_") || strings.HasSuffix(n, "_SHA"):
			return nil, fmt.Errorf("%q is a CBC or SHA-1 suite; use an AEAD suite such as %s", n, DefaultCipherSuites[0])
		case !slices.Contains(tls.CipherSuites()[i].SupportedVersions, tls.VersionTLS12):
			return nil, fmt.Errorf("%q is a TLS 1.3 suite, which Go does not let be configured", n)
		}
		ids = append(ids, tls.CipherSuites()[i].ID)
	}
	return ids, nil
}

// TLSOptions is how a server's TLS is set: the --tls-min-version and
// --tls-cipher-suites flags, and where certificates come from.
type TLSOptions struct {
	// MinVersion is "1.2" or "1.3"; empty is 1.2.
	MinVersion string
	// CipherSuites are IANA names; empty is DefaultCipherSuites.
	CipherSuites []string
	// GetCertificate returns the serving certificate (a certwatcher's).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// TLSConfig builds the tls.Config of every HTTPS server: TLS 1.2 or later,
// AEAD suites only, HTTP/2 and HTTP/1.1 offered. Options that change it
// further (client authentication, another certificate source) run after.
func TLSConfig(o TLSOptions, opts ...func(*tls.Config)) (*tls.Config, error) {
	minVersion := uint16(tls.VersionTLS12)
	if o.MinVersion != "" {
		v, err := TLSVersion(o.MinVersion)
		if err != nil {
			return nil, err
		}
		minVersion = v
	}
	names := o.CipherSuites
	if len(names) == 0 {
		names = DefaultCipherSuites
	}
	suites, err := CipherSuites(names)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   suites,
		GetCertificate: o.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	for _, opt := range opts {
		opt(cfg)
	}
	return cfg, nil
}
