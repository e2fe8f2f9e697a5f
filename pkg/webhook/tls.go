package webhook

import (
	"crypto/tls"
	"fmt"
	"slices"
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

// CipherSuites maps IANA suite names to their IDs. Only suites Go considers
// secure are accepted.
func CipherSuites(names []string) ([]uint16, error) {
	ids := make([]uint16, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%q is not a secure TLS 1.2 cipher suite name", n)
		}
		ids = append(ids, tls.CipherSuites()[i].ID)
	}
	return ids, nil
}
