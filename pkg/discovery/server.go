package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
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

// Bounds for every HTTP server of this package: a slow or idle client
// cannot hold a connection for long or send large headers.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// maxConnections bounds open connections; more wait to be accepted.
	maxConnections = 1024
	// ShutdownTimeout bounds graceful shutdown: in-flight requests finish,
	// new connections are refused.
	ShutdownTimeout = 5 * time.Second
)

// Server is an HTTP(S) server that stops gracefully when its context ends.
// It is a controller-runtime Runnable.
type Server struct {
	// Name appears in logs and errors (e.g. "discovery", "health").
	Name    string
	Addr    string
	Handler http.Handler
	// TLS, when set, makes the server serve HTTPS; certificates normally
	// come from a certwatcher's GetCertificate.
	TLS *tls.Config
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then shuts down within ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("%s server: listen on %s: %w", s.Name, s.Addr, err)
	}
	ln = netutil.LimitListener(ln, maxConnections)
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	log := logr.FromContextOrDiscard(ctx)
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Handshake failures and timeouts are what slow or hostile clients
		// cause: detail, not news.
		ErrorLog: stdlog.New(logWriter{log.V(1)}, "", 0),
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		done <- srv.Shutdown(shutdownCtx)
	}()
	log.Info("serving", "server", s.Name, "address", ln.Addr().String(), "tls", s.TLS != nil)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", s.Name, err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("%s server: shut down: %w", s.Name, err)
	}
	return nil
}

// logWriter turns net/http's error log lines into structured log entries.
type logWriter struct{ logger logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("http server error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}

// TLSConfig is the TLS configuration of a discovery listener: TLS 1.2 or
// later (minVersion may raise it), with only forward-secret AEAD cipher
// suites for TLS 1.2, and certificates from getCertificate (a certwatcher).
func TLSConfig(minVersion uint16, getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     max(minVersion, tls.VersionTLS12),
		GetCertificate: getCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}
