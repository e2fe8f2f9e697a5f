package serving

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"

	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
)

func newTestCA(t *testing.T, name string) *testcerts.CA {
	t.Helper()
	ca, err := testcerts.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *testcerts.CA, tmpl *x509.Certificate, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	cert, err := ca.Issue(tmpl, usage)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func client(t *testing.T, ca *testcerts.CA, cn string) tls.Certificate {
	t.Helper()
	return issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: cn}}, x509.ExtKeyUsageClientAuth)
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile swaps path's content in one rename, as a ConfigMap volume does.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestClientAuthConfigFlags(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "client CA")
	caFile := writeFile(t, dir, "ca.crt", ca.PEM)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret key bytes")})
	withKey := writeFile(t, dir, "with-key.pem", append(append([]byte{}, ca.PEM...), keyPEM...))
	noPEM := writeFile(t, dir, "not-pem.txt", []byte("just text\n"))
	empty := writeFile(t, dir, "empty.pem", nil)
	badCert := writeFile(t, dir, "bad-cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	huge := writeFile(t, dir, "huge.pem", make([]byte, MaxCAFileBytes+1))

	tests := map[string]struct {
		args    []string
		want    func(*ClientAuthConfig)
		wantErr []string // each a piece of the error
	}{
		"defaults: off": {
			want: func(*ClientAuthConfig) {},
		},
		"CA and names": {
			args: []string{"--client-ca-file=" + caFile, "--client-allowed-names=kube-apiserver,spiffe://example.org/apiserver"},
			want: func(c *ClientAuthConfig) {
				c.CAFile = caFile
				c.AllowedNames = []string{"kube-apiserver", "spiffe://example.org/apiserver"}
			},
		},
		"CA without names": {
			args: []string{"--client-ca-file=" + caFile},
			want: func(c *ClientAuthConfig) { c.CAFile = caFile },
		},
		"missing file": {
			args:    []string{"--client-ca-file=" + filepath.Join(dir, "missing.crt")},
			wantErr: []string{"--client-ca-file: open " + filepath.Join(dir, "missing.crt") + ": no such file or directory"},
		},
		"no PEM": {
			args:    []string{"--client-ca-file=" + noPEM},
			wantErr: []string{"--client-ca-file: " + noPEM + ": holds no PEM certificate"},
		},
		"empty file": {
			args:    []string{"--client-ca-file=" + empty},
			wantErr: []string{"--client-ca-file: " + empty + ": holds no PEM certificate"},
		},
		"a key in the bundle": {
			args:    []string{"--client-ca-file=" + withKey},
			wantErr: []string{"--client-ca-file: " + withKey + `: PEM block 2 is a "PRIVATE KEY", not a CERTIFICATE`},
		},
		"a certificate that does not parse": {
			args:    []string{"--client-ca-file=" + badCert},
			wantErr: []string{"--client-ca-file: " + badCert + ": PEM block 1: x509: "},
		},
		"too large": {
			args:    []string{"--client-ca-file=" + huge},
			wantErr: []string{"--client-ca-file: " + huge + " is larger than 1048576 bytes"},
		},
		"names without CA": {
			args:    []string{"--client-allowed-names=kube-apiserver"},
			wantErr: []string{"--client-allowed-names: needs --client-ca-file"},
		},
		"every bad flag named at once": {
			args: []string{"--client-ca-file=" + noPEM, "--client-allowed-names=ok,,has space"},
			wantErr: []string{"--client-ca-file: ", `--client-allowed-names: "" is empty`,
				`--client-allowed-names: "has space" is empty or contains white space`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := NewClientAuthConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			err := cfg.Validate()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Validate() = nil, want an error with %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Validate() error does not say %q:\n%v", w, err)
					}
				}
				if strings.Contains(err.Error(), "secret key bytes") || strings.Contains(err.Error(), string(keyPEM)) {
					t.Errorf("Validate() error holds the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			want := NewClientAuthConfig()
			tc.want(want)
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got, wantOn := cfg.Enabled(), cfg.CAFile != ""; got != wantOn {
				t.Errorf("Enabled() = %v, want %v", got, wantOn)
			}
		})
	}
}

// The CA file is held to certpool's strict parse.
func TestParseCertPool(t *testing.T) {
	a, b := newTestCA(t, "a"), newTestCA(t, "b")
	tests := map[string]struct {
		data     []byte
		wantErr  string
		wantSubj int
	}{
		"one":                     {data: a.PEM, wantSubj: 1},
		"a bundle":                {data: append(append([]byte{}, a.PEM...), b.PEM...), wantSubj: 2},
		"text around the PEM":     {data: []byte("# client CAs\n" + string(a.PEM) + "\n# end\n"), wantSubj: 1},
		"nothing":                 {data: nil, wantErr: "holds no PEM certificate"},
		"text only":               {data: []byte("-----BEGIN nothing"), wantErr: "holds no PEM certificate"},
		"a certificate request":   {data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), wantErr: `PEM block 1 is a "CERTIFICATE REQUEST", not a CERTIFICATE`},
		"second block unparsable": {data: append(append([]byte{}, a.PEM...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})...), wantErr: "PEM block 2: x509: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pool, err := certpool.New(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseCertPool() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCertPool() = %v", err)
			}
			//nolint:staticcheck // Subjects is deprecated for system pools only.
			if got := len(pool.Subjects()); got != tc.wantSubj {
				t.Errorf("pool holds %d certificates, want %d", got, tc.wantSubj)
			}
		})
	}
}

// server is a TLS server on loopback with client authentication, answering
// every request with 200.
type server struct {
	addr string
	ca   *testcerts.CA // signed the serving certificate
	auth *ClientAuth
}

func startServer(t *testing.T, cfg ClientAuthConfig) *server {
	t.Helper()
	auth, err := NewClientAuth(cfg, logr.Discard())
	if err != nil {
		t.Fatalf("NewClientAuth: %v", err)
	}
	ca := newTestCA(t, "serving CA")
	pair, err := ca.Serving(testcerts.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	auth.ConfigureTLS(tlsCfg)
	// Set after ConfigureTLS, as the webhook server sets its certificate
	// watcher after the options: each handshake must see it.
	tlsCfg.Certificates = []tls.Certificate{serving}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ReadHeaderTimeout: 5 * time.Second,
		// The refused handshakes are what these tests cause.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &server{addr: ln.Addr().String(), ca: ca, auth: auth}
}

// get sends one HTTP/1.1 request over a fresh TLS connection and returns
// the status line, and whether the session was resumed.
func (s *server) get(cfg *tls.Config) (status string, resumed bool, err error) {
	cfg = cfg.Clone()
	cfg.RootCAs = s.ca.Pool()
	cfg.ServerName = "127.0.0.1"
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	conn := c.(*tls.Conn)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	resumed = conn.ConnectionState().DidResume
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")); err != nil {
		return "", resumed, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", resumed, err
	}
	return strings.TrimSpace(line), resumed, nil
}

// wantRefused fails unless err is a TLS alert from the server: the
// handshake was refused, no HTTP answer came.
func wantRefused(t *testing.T, status string, err error) {
	t.Helper()
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		t.Errorf("got status %q, error %v; want a TLS alert from the server", status, err)
	}
}

func TestClientAuthHandshake(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, "client CA"), newTestCA(t, "other CA")
	caFile := writeFile(t, dir, "ca.crt", ca.PEM)
	uri, _ := url.Parse("spiffe://example.org/ns/kube-system/sa/apiserver")
	certs := map[string]tls.Certificate{
		"allowed CN":        client(t, ca, "kube-apiserver"),
		"allowed DNS SAN":   issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"apiserver.example.org"}}, x509.ExtKeyUsageClientAuth),
		"allowed URI SAN":   issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "y"}, URIs: []*url.URL{uri}}, x509.ExtKeyUsageClientAuth),
		"name not allowed":  client(t, ca, "system:admin"),
		"other CA":          client(t, other, "kube-apiserver"),
		"server usage only": issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"}}, x509.ExtKeyUsageServerAuth),
	}
	allowed := []string{"kube-apiserver", "apiserver.example.org", uri.String()}
	tests := map[string]struct {
		names  []string
		cert   string // key of certs; "" presents none
		wantOK bool
	}{
		"no certificate":                   {names: allowed},
		"no certificate, any name allowed": {},
		"other CA":                         {names: allowed, cert: "other CA"},
		"other CA, any name allowed":       {cert: "other CA"},
		"name not allowed":                 {names: allowed, cert: "name not allowed"},
		"not a client certificate":         {names: allowed, cert: "server usage only"},
		"allowed CN":                       {names: allowed, cert: "allowed CN", wantOK: true},
		"allowed DNS SAN":                  {names: allowed, cert: "allowed DNS SAN", wantOK: true},
		"allowed URI SAN":                  {names: allowed, cert: "allowed URI SAN", wantOK: true},
		"any name allowed":                 {cert: "name not allowed", wantOK: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := startServer(t, ClientAuthConfig{CAFile: caFile, AllowedNames: tc.names, ReloadInterval: time.Hour})
			// TLS 1.2 refuses within the handshake; TLS 1.3 clients finish
			// theirs first and read the alert next.
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cfg := &tls.Config{MinVersion: v, MaxVersion: v}
				if tc.cert != "" {
					cfg.Certificates = []tls.Certificate{certs[tc.cert]}
				}
				status, _, err := s.get(cfg)
				if !tc.wantOK {
					wantRefused(t, status, err)
					continue
				}
				if err != nil || status != "HTTP/1.1 200 OK" {
					t.Errorf("TLS %x: got status %q, error %v; want 200", v, status, err)
				}
			}
		})
	}
}

func TestClientAuthReload(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	caFile := writeFile(t, dir, "ca.crt", oldCA.PEM)
	s := startServer(t, ClientAuthConfig{CAFile: caFile, AllowedNames: []string{"kube-apiserver"}, ReloadInterval: time.Hour})
	oldClient := &tls.Config{Certificates: []tls.Certificate{client(t, oldCA, "kube-apiserver")}}
	newClient := &tls.Config{Certificates: []tls.Certificate{client(t, newCA, "kube-apiserver")}}

	if status, _, err := s.get(oldClient); err != nil {
		t.Fatalf("old CA before the change: status %q, %v", status, err)
	}
	status, _, err := s.get(newClient)
	wantRefused(t, status, err)

	if changed, err := s.auth.reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged file = %v, %v; want false, nil", changed, err)
	}
	replaceFile(t, caFile, newCA.PEM)
	if changed, err := s.auth.reload(); !changed || err != nil {
		t.Fatalf("reload after the change = %v, %v; want true, nil", changed, err)
	}
	if status, _, err := s.get(newClient); err != nil {
		t.Errorf("new CA after the change: status %q, %v", status, err)
	}
	status, _, err = s.get(oldClient)
	wantRefused(t, status, err)

	// A bad edit keeps the CAs last loaded.
	for name, data := range map[string][]byte{
		"no PEM": []byte("oops"),
		"a key":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}),
	} {
		replaceFile(t, caFile, data)
		if changed, err := s.auth.reload(); changed || err == nil {
			t.Errorf("%s: reload = %v, %v; want false and an error", name, changed, err)
		}
		if status, _, err := s.get(newClient); err != nil {
			t.Errorf("%s: new CA after a bad edit: status %q, %v", name, status, err)
		}
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if _, err := s.auth.reload(); err == nil {
		t.Error("reload of a removed file: no error")
	}
	if status, _, err := s.get(newClient); err != nil {
		t.Errorf("new CA after the file was removed: status %q, %v", status, err)
	}
}

// A TLS session resumed after its client's CA was removed is refused too.
func TestClientAuthResumedSessionRechecked(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	caFile := writeFile(t, dir, "ca.crt", oldCA.PEM)
	s := startServer(t, ClientAuthConfig{CAFile: caFile, ReloadInterval: time.Hour})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		client := &tls.Config{
			MinVersion: v, MaxVersion: v,
			Certificates:       []tls.Certificate{client(t, oldCA, "kube-apiserver")},
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
		replaceFile(t, caFile, oldCA.PEM)
		if _, err := s.auth.reload(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.get(client); err != nil {
			t.Fatalf("TLS %x: first connection: %v", v, err)
		}
		// Without a change the session is resumed: what follows tests
		// resumption.
		if _, resumed, err := s.get(client); err != nil || !resumed {
			t.Fatalf("TLS %x: second connection: resumed %v, %v; want a resumed session", v, resumed, err)
		}
		replaceFile(t, caFile, newCA.PEM)
		if _, err := s.auth.reload(); err != nil {
			t.Fatal(err)
		}
		status, _, err := s.get(client)
		wantRefused(t, status, err)
	}
}

func TestClientAuthStartReloads(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	caFile := writeFile(t, dir, "ca.crt", oldCA.PEM)
	s := startServer(t, ClientAuthConfig{CAFile: caFile, ReloadInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.auth.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() = %v", err)
		}
	}()

	replaceFile(t, caFile, newCA.PEM)
	client := &tls.Config{Certificates: []tls.Certificate{client(t, newCA, "kube-apiserver")}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.get(client)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client of the new CA is still refused 10s after the change: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
