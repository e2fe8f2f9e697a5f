package discovery

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// Source keeps a Publisher's key set current.
type Source interface {
	// Refresh loads the keys once and publishes them.
	Refresh(ctx context.Context) error
	// Run refreshes until ctx ends; it returns early only when the source
	// cannot work at all (unreadable key files at start, issuer mismatch).
	Run(ctx context.Context) error
}

var (
	_ Source = (*FileSource)(nil)
	_ Source = (*APIServerSource)(nil)
)

// Limits of every server of this package: a slow or idle client cannot
// hold a connection for long or send large headers. The connection policy,
// drain and error log are serving.Server's, as for the webhook.
func Limits() serving.Limits {
	l := serving.DefaultLimits()
	l.ReadHeaderTimeout = readHeaderTimeout
	l.ReadTimeout = 10 * time.Second
	l.WriteTimeout = 10 * time.Second
	l.IdleTimeout = 60 * time.Second
	l.MaxHeaderBytes = 16 << 10
	l.MaxConcurrentStreams = 32
	l.ShutdownTimeout = ShutdownTimeout
	return l
}

const (
	readHeaderTimeout = 5 * time.Second
	// ShutdownTimeout bounds graceful shutdown: in-flight requests finish,
	// new connections are refused.
	ShutdownTimeout = 5 * time.Second
	// maxBodyBytes bounds a request body: the discovery endpoints are
	// GETs, the health probes too.
	maxBodyBytes = 64 << 10
)

// bodyBudget is shared by every server of the process: bodies are not
// expected, so 1 MiB of them in flight is plenty.
var bodyBudget = serving.NewBudget(1<<20, maxBodyBytes, serving.DefaultBudgetWait)

// Server is an HTTP(S) server that stops gracefully when its context ends.
// It is a controller-runtime Runnable.
type Server struct {
	// Name appears in logs and errors (e.g. "discovery", "health").
	Name string
	// Addr is listened on unless Listener is set.
	Addr string
	// Listener, when set before Start, is served instead of Addr (tests
	// bind 127.0.0.1:0 and hand it over rather than race for a port).
	Listener net.Listener
	Handler  http.Handler
	// TLS, when set, makes the server serve HTTPS; build it with TLSConfig.
	TLS *tls.Config
	// Metrics, when set, count what the serving limits did, under Name.
	Metrics *serving.Metrics

	current serving.Current
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then shuts down within ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	srv := &serving.Server{Name: s.Name, Addr: s.Addr, Listener: s.Listener, Handler: s.Handler, TLS: s.TLS, Limits: Limits(), Budget: bodyBudget, Metrics: s.Metrics}
	s.current.Set(srv)
	return srv.Start(ctx)
}

// Ready is a readiness check: the server serves, with a certificate if TLS.
func (s *Server) Ready(r *http.Request) error { return s.current.Ready(s.Name, r) }

// ListenAddr is the address served, once started.
func (s *Server) ListenAddr() string { return s.current.ListenAddr() }

// TLSConfig is the TLS configuration of a discovery listener: the one
// serving.TLSConfig builds from the --tls-min-version and
// --tls-cipher-suites flags (empty: TLS 1.2 and serving.DefaultCipherSuites),
// with certificates from getCertificate (a certwatcher).
func TLSConfig(minVersion string, cipherSuites []string, getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*tls.Config, error) {
	return serving.TLSConfig(serving.TLSOptions{MinVersion: minVersion, CipherSuites: cipherSuites, GetCertificate: getCertificate})
}
