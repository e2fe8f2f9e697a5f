package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// MutatePath is where the webhook answers AdmissionReviews.
const MutatePath = "/mutate"

// Limits bound what clients can hold of the webhook server, so that slow,
// idle or half-open connections cannot starve the API server's requests.
type Limits struct {
	// ReadHeaderTimeout bounds the TLS handshake and the request headers
	// (net/http applies the smallest of the read and write timeouts to the
	// handshake).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds the handler and the response. It exceeds the API
	// server's longest webhook timeout (30s), so the API server gives up
	// first.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers; the API server sends a few
	// hundred bytes.
	MaxHeaderBytes int
	// MaxConnections bounds open connections; more wait to be accepted.
	MaxConnections int
	// MaxConcurrentStreams bounds the requests in flight on one HTTP/2
	// connection.
	MaxConcurrentStreams int
	// ShutdownTimeout bounds graceful shutdown: requests in flight finish,
	// new connections are refused.
	ShutdownTimeout time.Duration
}

// DefaultLimits are the limits NewServer uses.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout:    5 * time.Second,
		ReadTimeout:          15 * time.Second,
		WriteTimeout:         35 * time.Second,
		IdleTimeout:          90 * time.Second, // the API server's idle keep-alive is 90s
		MaxHeaderBytes:       64 << 10,
		MaxConnections:       1024,
		MaxConcurrentStreams: 100,
		ShutdownTimeout:      30 * time.Second,
	}
}

// Server is the webhook's HTTPS server. It implements controller-runtime's
// webhook.Server, whose default implementation offers no read timeout, no
// connection bound and a 1 MiB header limit.
type Server struct {
	// Limits may be changed until Start.
	Limits Limits

	addr     string
	certDir  string
	tlsOpts  []func(*tls.Config)
	mux      *http.ServeMux
	conns    connTracker
	mu       sync.Mutex
	started  bool
	listener string // the address actually listened on, once started
}

var _ ctrlwebhook.Server = (*Server)(nil)

// NewServer returns the HTTPS server that answers AdmissionReviews at
// MutatePath with handler (a *Handler). It reads tls.crt and tls.key from cfg.CertDir and
// reloads them when they change, unless one of tlsOpts sets GetCertificate.
// tlsOpts run after cfg's TLS settings. cfg must have passed Validate. The
// returned server is a *Server with DefaultLimits.
func NewServer(cfg *Config, handler http.Handler, tlsOpts ...func(*tls.Config)) ctrlwebhook.Server {
	minVersion, _ := TLSVersion(cfg.TLSMinVersion)
	suites, _ := CipherSuites(cfg.TLSCipherSuites)
	s := &Server{
		Limits:  DefaultLimits(),
		addr:    net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.Port)),
		certDir: cfg.CertDir,
		tlsOpts: append([]func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = minVersion
			c.CipherSuites = suites
		}}, tlsOpts...),
		mux: http.NewServeMux(),
	}
	s.Register(MutatePath, handler)
	return s
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *Server) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux returns the server's request multiplexer.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx ends, then stops accepting and lets the accepted
// connections finish, within Limits.ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-server")
	cfg := &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	for _, opt := range s.tlsOpts {
		opt(cfg)
	}
	if cfg.GetCertificate == nil {
		w, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("webhook server: load serving certificate from %s: %w", s.certDir, err)
		}
		cfg.GetCertificate = w.GetCertificate
		go func() {
			if err := w.Start(ctx); err != nil {
				logger.Error(err, "certificate watcher stopped")
			}
		}()
	}

	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("webhook server: listen on %s: %w", s.addr, err)
	}
	ln = tls.NewListener(netutil.LimitListener(ln, s.Limits.MaxConnections), cfg)

	srv := &http.Server{
		Handler: s.mux,
		// Requests must outlive SIGTERM until drained (see connTracker).
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ReadHeaderTimeout: s.Limits.ReadHeaderTimeout,
		ReadTimeout:       s.Limits.ReadTimeout,
		WriteTimeout:      s.Limits.WriteTimeout,
		IdleTimeout:       s.Limits.IdleTimeout,
		MaxHeaderBytes:    s.Limits.MaxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: s.Limits.MaxConcurrentStreams},
		// Handshake failures and timeouts are what slow or hostile clients
		// cause; they are detail, not news.
		ErrorLog:  stdlog.New(logWriter{logger.V(1)}, "", 0),
		ConnState: s.conns.track,
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		done <- s.conns.drain(srv, ln, s.Limits.ShutdownTimeout, logger)
	}()

	s.mu.Lock()
	s.started, s.listener = true, ln.Addr().String()
	s.mu.Unlock()
	logger.Info("serving", "address", ln.Addr().String())
	if err := srv.Serve(ln); ctx.Err() == nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook server: %w", err)
	}
	// Serve returns as soon as the drain closes the listener; the accepted
	// connections are still being served.
	if err := <-done; err != nil {
		return fmt.Errorf("webhook server: shut down: %w", err)
	}
	return nil
}

// logWriter turns net/http's error log lines into structured log entries.
type logWriter struct{ logger logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("http server error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartedChecker is healthy once the server completes TLS handshakes.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started, addr := s.started, s.listener
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not started")
		}
		d := &tls.Dialer{
			NetDialer: &net.Dialer{Timeout: 5 * time.Second},
			// Only reachability is checked; the certificate is the client's
			// business.
			Config: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
