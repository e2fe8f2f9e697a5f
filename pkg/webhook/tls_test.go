package webhook

import (
	"crypto/tls"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

// The default TLS policy of the real server: TLS 1.2 or later, and for
// TLS 1.2 only forward-secret AEAD suites.
func TestServerTLSPolicy(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{})
	tests := map[string]struct {
		client *tls.Config
		ok     bool
	}{
		"TLS 1.3":                 {&tls.Config{MinVersion: tls.VersionTLS13}, true},
		"TLS 1.2 with AES-GCM":    {&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		"TLS 1.2 with ChaCha20":   {&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		"TLS 1.2 with CBC only":   {&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		"TLS 1.2 with SHA256 CBC": {&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
		"TLS 1.1":                 {&tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		"TLS 1.0":                 {&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.client.RootCAs = s.ca.Pool()
			conn, err := tls.Dial("tcp", s.addr, tc.client)
			if err == nil {
				conn.Close()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("handshake succeeded = %t, want %t (%v)", got, tc.ok, err)
			}
		})
	}
}
