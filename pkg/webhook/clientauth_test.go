package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// With client certificates required, the server still takes its serving
// certificate from --cert-dir, answers the allowed client, refuses others at
// the handshake, and its readiness check still passes.
func TestServerWithClientAuth(t *testing.T) {
	for _, minVersion := range []string{"1.2", "1.3"} {
		t.Run("tls-min-version "+minVersion, func(t *testing.T) {
			servingCA, err := testcerts.NewCA("serving CA")
			if err != nil {
				t.Fatal(err)
			}
			pair, err := servingCA.Serving(testcerts.ECDSA)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := pair.Write(dir); err != nil {
				t.Fatal(err)
			}
			clientCA, err := testcerts.NewCA("client CA")
			if err != nil {
				t.Fatal(err)
			}
			caFile := filepath.Join(dir, "client-ca.crt")
			if err := os.WriteFile(caFile, clientCA.PEM, 0o600); err != nil {
				t.Fatal(err)
			}
			authCfg := serving.NewClientAuthConfig()
			authCfg.CAFile, authCfg.AllowedNames = caFile, []string{"kube-apiserver"}
			if err := authCfg.Validate(); err != nil {
				t.Fatal(err)
			}
			auth, err := serving.NewClientAuth(*authCfg, logr.Discard())
			if err != nil {
				t.Fatal(err)
			}

			cfg := NewConfig()
			cfg.BindAddress, cfg.CertDir, cfg.TLSMinVersion = "127.0.0.1", dir, minVersion
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			srv := NewServer(cfg, &Handler{Defaults: cfg.Defaults(), ServiceAccounts: staticServiceAccounts{}}, auth.ConfigureTLS)
			ln := listen(t)
			srv.(*Server).Listener = ln
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Start(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("server stopped with %v", err)
				}
			})
			eventually(t, 10*time.Second, func() error { return srv.(*Server).StartedChecker()(nil) })

			url := "https://" + ln.Addr().String() + MutatePath
			post := func(certs ...tls.Certificate) (*http.Response, error) {
				c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
					TLSClientConfig: &tls.Config{RootCAs: servingCA.Pool(), Certificates: certs},
				}}
				defer c.CloseIdleConnections()
				return c.Post(url, "application/json", bytes.NewReader(reviewBody(t, "u1", []byte(plainPod))))
			}
			allowed, err := clientCA.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"}}, x509.ExtKeyUsageClientAuth)
			if err != nil {
				t.Fatal(err)
			}
			other, err := clientCA.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "someone"}}, x509.ExtKeyUsageClientAuth)
			if err != nil {
				t.Fatal(err)
			}

			resp, err := post(allowed)
			if err != nil {
				t.Fatalf("allowed client: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("allowed client: status %d, want 200", resp.StatusCode)
			}
			for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "name not allowed": {other}} {
				resp, err := post(certs...)
				var op *net.OpError
				if !errors.As(err, &op) || op.Op != "remote error" {
					if resp != nil {
						resp.Body.Close()
					}
					t.Errorf("%s: got %v, %v; want a TLS alert from the server", name, resp, err)
				}
			}
			if err := srv.(*Server).StartedChecker()(nil); err != nil {
				t.Errorf("readiness check with client certificates required: %v", err)
			}
		})
	}
}
