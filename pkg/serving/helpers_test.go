package serving

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

// testServer is a Server on a loopback listener bound to :0.
type testServer struct {
	*Server
	addr string
	pool *x509.CertPool
}

// serverCert returns a serving certificate for 127.0.0.1 and its CA pool.
func serverCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := testcerts.NewCA("serving-test")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Serving(testcerts.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.Pool()
}

// start serves s over TLS (unless plain) until the test ends.
func start(t testing.TB, s *Server, plain bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Listener = ln
	ts := &testServer{Server: s, addr: ln.Addr().String()}
	if !plain {
		cert, pool := serverCert(t)
		s.TLS, err = TLSConfig(TLSOptions{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }})
		if err != nil {
			t.Fatal(err)
		}
		ts.pool = pool
	}
	if s.Name == "" {
		s.Name = "test"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	eventually(t, 10*time.Second, "the server to start", func() bool { return s.Ready(nil) == nil })
	return ts
}

// client returns an HTTP client of ts: HTTP/2 when h2, else HTTP/1.1.
func (ts *testServer) client(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ts.pool},
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// eventually waits, at most timeout, until cond holds.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// table is the server's connection table, once started.
func (ts *testServer) table() *connTable {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.Server.table
}
