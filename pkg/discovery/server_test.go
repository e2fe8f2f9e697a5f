package discovery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs s until the test ends and waits until it accepts
// connections.
func startServer(t *testing.T, s *Server) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	waitFor(t, 10*time.Second, "the server to listen", func() bool {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	stopped := false
	cancel = func() error {
		if stopped {
			return nil
		}
		stopped = true
		stop()
		select {
		case err := <-done:
			return err
		case <-time.After(2 * ShutdownTimeout):
			return fmt.Errorf("server did not stop")
		}
	}
	t.Cleanup(func() { _ = cancel() })
	return cancel
}

func testCertificate(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestServerTLSPolicy(t *testing.T) {
	cert, pool := testCertificate(t)
	s := &Server{
		Name:    "discovery",
		Addr:    freeAddr(t),
		Handler: NewHandler(publisherWith(t, PublisherOptions{}, "rsa.pub"), nil),
		TLS:     mustTLSConfig(t, "", nil, cert),
	}
	startServer(t, s)
	tests := map[string]struct {
		client *tls.Config
		ok     bool
	}{
		"TLS 1.3":                  {client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, ok: true},
		"TLS 1.2 with AEAD":        {client: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, ok: true},
		"TLS 1.1":                  {client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
		"TLS 1.2 with CBC only":    {client: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}},
		"TLS 1.2 with SHA-256 CBC": {client: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", s.Addr, tc.client)
			if err == nil {
				conn.Close()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("handshake succeeded = %v, want %v (err %v)", got, tc.ok, err)
			}
		})
	}
}

// TestServerGracefulShutdown: a request in flight when the server is told
// to stop still gets its answer, and Start returns nil.
func TestServerGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := &Server{Name: "test", Addr: freeAddr(t), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})}
	cancel := startServer(t, s)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- cancel() }()
	// New connections are refused once shutdown has begun.
	waitFor(t, 10*time.Second, "new connections refused", func() bool {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request = %q, %v; want done", r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Start = %v, want nil", err)
	}
}

// TestServerDropsSlowClients: half-open TLS handshakes and clients that send
// headers slowly neither block a normal request nor stay connected past the
// header timeout.
func TestServerDropsSlowClients(t *testing.T) {
	cert, pool := testCertificate(t)
	s := &Server{
		Name:    "discovery",
		Addr:    freeAddr(t),
		Handler: NewHandler(publisherWith(t, PublisherOptions{}, "rsa.pub"), nil),
		TLS:     mustTLSConfig(t, "", nil, cert),
	}
	startServer(t, s)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func() {
		t.Helper()
		resp, err := client.Get("https://" + s.Addr + "/cluster-1" + JWKSPath)
		if err != nil {
			t.Fatalf("GET %s: %v", JWKSPath, err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d, %v", JWKSPath, resp.StatusCode, err)
		}
	}

	var slow []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// A TLS record header announcing a ClientHello that never comes.
		if _, err := c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	for range 50 {
		c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET "+JWKSPath+" HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	get()
	for i, c := range slow {
		if err := c.SetReadDeadline(time.Now().Add(4 * readHeaderTimeout)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("slow connection %d still open after %s", i, 4*readHeaderTimeout)
			}
			break
		}
	}
	get()
}

func mustTLSConfig(t *testing.T, minVersion string, suites []string, cert *tls.Certificate) *tls.Config {
	t.Helper()
	cfg, err := TLSConfig(minVersion, suites, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServerTLSFlags: the webhook's --tls-min-version and
// --tls-cipher-suites, as serve --discovery-port passes them, are what the
// discovery listener negotiates.
func TestServerTLSFlags(t *testing.T) {
	cert, pool := testCertificate(t)
	only256 := mustTLSConfig(t, "1.2", []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, cert)
	tls13 := mustTLSConfig(t, "1.3", nil, cert)
	tests := map[string]struct {
		server *tls.Config
		client *tls.Config
		ok     bool
	}{
		"listed suite":         {only256, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, true},
		"suite not listed":     {only256, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, false},
		"TLS 1.3 with min 1.3": {tls13, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		"TLS 1.2 with min 1.3": {tls13, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &Server{Name: "discovery", Addr: freeAddr(t), Handler: http.NotFoundHandler(), TLS: tc.server}
			startServer(t, s)
			tc.client.RootCAs = pool
			conn, err := tls.Dial("tcp", s.Addr, tc.client)
			if err == nil {
				conn.Close()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("handshake succeeded = %v, want %v (err %v)", got, tc.ok, err)
			}
		})
	}
	if _, err := TLSConfig("1.2", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}, nil); err == nil {
		t.Error("a CBC SHA-1 suite was accepted")
	}
}
