package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// HTTP server bounds. The shutdown grace is an upper bound: the manager's
// own graceful shutdown timeout usually ends the process sooner.
const (
	readHeaderTimeout = 32 * time.Second
	idleTimeout       = 90 * time.Second
	maxHeaderBytes    = 1 << 20
	shutdownGrace     = 30 * time.Second
)

// httpsServer serves the admission webhook over TLS as a controller-runtime
// webhook.Server (the manager starts it with the webhooks, and its
// StartedChecker is a readiness check).
//
// It exists for one difference from controller-runtime's DefaultServer,
// which serves every connection with the manager's context: SIGTERM cancels
// that context, which aborted TLS handshakes in progress (the client, done
// with its side, had already sent its request and got a reset) and
// cancelled admissions in flight (a Pod waiting on a live ServiceAccount
// lookup was denied). Here connections get a context that SIGTERM does not
// cancel, and the shutdown has two steps: the listener closes at once, then
// every connection already accepted is served until it has no request in
// progress or being read, and only then does http.Server.Shutdown close the
// idle ones (Shutdown alone drops a request it reads after it began, so a
// client that had just connected got EOF). Both steps are bounded by
// shutdownGrace.
type httpsServer struct {
	host    string
	port    int
	certDir string
	tlsOpts []func(*tls.Config)
	mux     *http.ServeMux
	started atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

// trackConn records each connection's state for the drain.
func (s *httpsServer) trackConn(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]http.ConnState{}
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	default:
		s.conns[c] = st
	}
}

// busy counts connections reading or serving a request.
func (s *httpsServer) busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.conns {
		if st == http.StateNew || st == http.StateActive {
			n++
		}
	}
	return n
}

// drain closes the listener and waits until no accepted connection is
// reading or serving a request, then shuts the server down. A connection
// that never sends a request holds the wait until shutdownGrace; the
// manager's graceful shutdown timeout ends the process before that.
func (s *httpsServer) drain(srv *http.Server, l net.Listener, logger logr.Logger) {
	deadline := time.Now().Add(shutdownGrace)
	_ = l.Close()
	for s.busy() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error(err, "webhook server did not drain in time; closing connections")
		_ = srv.Close()
	}
}

var _ ctrlwebhook.Server = (*httpsServer)(nil)

func (s *httpsServer) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }
func (s *httpsServer) WebhookMux() *http.ServeMux              { return s.mux }
func (s *httpsServer) NeedLeaderElection() bool                { return false }

// StartedChecker passes once the server listens.
func (s *httpsServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server has not started")
		}
		return nil
	}
}

// Start listens and serves until ctx ends, then stops accepting and lets
// accepted connections finish.
func (s *httpsServer) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-server")
	cfg := &tls.Config{NextProtos: []string{"h2"}}
	for _, opt := range s.tlsOpts {
		opt(cfg)
	}
	if cfg.GetCertificate == nil {
		w, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("load serving certificate from %s: %w", s.certDir, err)
		}
		cfg.GetCertificate = w.GetCertificate
		go func() {
			if err := w.Start(ctx); err != nil {
				logger.Error(err, "serving certificate watch failed")
			}
		}()
	}
	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	l, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		Handler:           s.mux,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         s.trackConn,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		s.drain(srv, l, logger)
	}()
	logger.Info("serving webhook", "address", addr)
	s.started.Store(true)
	err = srv.Serve(l)
	if ctx.Err() == nil {
		return fmt.Errorf("serve webhook on %s: %w", addr, err)
	}
	// Serve returns as soon as drain closes the listener; the accepted
	// connections are still being served.
	<-done
	return nil
}
