package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/http2"
)

// Server is the one HTTP(S) server of every listener: the webhook, the
// discovery documents, health probes. It applies Limits, the connection
// policy (connTable), an optional body Budget, and drains on shutdown. It
// is a controller-runtime Runnable.
type Server struct {
	// Name appears in logs and errors (e.g. "webhook", "discovery").
	Name string
	// Addr is listened on unless Listener is set.
	Addr string
	// Listener, when set, is served instead of listening on Addr.
	Listener net.Listener
	Handler  http.Handler
	// TLS, when set, makes the server serve HTTPS (see TLSConfig).
	TLS *tls.Config
	// Limits are DefaultLimits when zero.
	Limits Limits
	// Budget, when set, bounds the request bodies in flight.
	Budget *Budget
	// Metrics, when set, count what the limits did, under Name.
	Metrics *Metrics
	// Log is used when the context carries no logger.
	Log logr.Logger

	mu      sync.Mutex
	started bool
	stopped bool
	addr    string
	table   *connTable
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// ListenAddr is the address served, once started.
func (s *Server) ListenAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Ready is a readiness check (a healthz.Checker): the server is serving
// and, with TLS, has a certificate to offer. It does not connect to the
// public listener, whose slots clients may hold.
func (s *Server) Ready(*http.Request) error {
	s.mu.Lock()
	started, stopped := s.started, s.stopped
	s.mu.Unlock()
	switch {
	case !started:
		return fmt.Errorf("%s server has not started", s.Name)
	case stopped:
		return fmt.Errorf("%s server has stopped", s.Name)
	}
	if s.TLS != nil {
		cfg := s.TLS
		if cfg.GetConfigForClient != nil {
			c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
			if err != nil {
				return fmt.Errorf("%s server TLS configuration: %w", s.Name, err)
			}
			if c != nil {
				cfg = c
			}
		}
		if cfg.GetCertificate != nil {
			if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err != nil {
				return fmt.Errorf("%s server has no serving certificate: %w", s.Name, err)
			}
		} else if len(cfg.Certificates) == 0 {
			return fmt.Errorf("%s server has no serving certificate", s.Name)
		}
	}
	return nil
}

// Start serves until ctx ends, then drains within Limits.ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	if log.GetSink() == nil {
		log = s.Log
	}
	limits := s.Limits
	if limits == (Limits{}) {
		limits = DefaultLimits()
	}
	ln := s.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.Addr); err != nil {
			return fmt.Errorf("%s server: listen on %s: %w", s.Name, s.Addr, err)
		}
	}
	table := newConnTable(limits.MaxConnections, s.TLS != nil)
	if s.TLS != nil {
		table.setHandshakes(limits.MaxHandshakes)
	}
	table.metrics = s.Metrics.forServer(s.Name)
	var served net.Listener = &listener{Listener: ln, table: table}
	if s.TLS != nil {
		served = tls.NewListener(served, notingHello(s.TLS))
	}
	handler := s.Handler
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	if s.Budget != nil {
		handler = s.Budget.Wrap(handler)
	}
	// Requests must outlive the cancellation of ctx until drained: it
	// aborted TLS handshakes and denied admissions waiting on a lookup.
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		Handler:     table.marking(handler),
		BaseContext: func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, connOf(c))
		},
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		HTTP2:             limits.http2Config(),
		// Handshake failures and timeouts are what slow or hostile clients
		// cause: detail, not news.
		ErrorLog:  stdlog.New(logWriter{log.V(1)}, "", 0),
		ConnState: table.connState,
	}
	if s.TLS != nil {
		// HTTP/2 through x/net/http2, one http2.Server per connection, so
		// that the connection policy can send GOAWAY on one connection
		// (net/http's can only on all at once, at Shutdown).
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
			http2.NextProtoTLS: func(hs *http.Server, tc *tls.Conn, h http.Handler) { serveHTTP2(base, hs, tc, h) },
		}
	} else {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}

	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		done <- drain(srv, ln, table, limits.ShutdownTimeout, log.WithValues("server", s.Name))
	}()
	s.mu.Lock()
	s.started, s.addr, s.table = true, ln.Addr().String(), table
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
	}()
	log.Info("serving", "server", s.Name, "address", ln.Addr().String(), "tls", s.TLS != nil)
	if err := srv.Serve(served); ctx.Err() == nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", s.Name, err)
	}
	// Serve returns as soon as drain closes the listener; the accepted
	// connections are still being served.
	<-ctx.Done()
	if err := <-done; err != nil {
		return fmt.Errorf("%s server: shut down: %w", s.Name, err)
	}
	return nil
}

// serveHTTP2 serves one HTTP/2 connection with hs's limits (x/net/http2
// reads hs.HTTP2 and the timeouts), under its own http.Server whose
// Shutdown sends GOAWAY on this connection only.
func serveHTTP2(base context.Context, hs *http.Server, tc *tls.Conn, h http.Handler) {
	c := connOf(tc)
	one := &http.Server{
		// ReadTimeout and WriteTimeout are applied per request by
		// bodyTimeout and writeTimeout, on the pause clock: x/net's own
		// per-stream timers fire across a pause and failed requests whose
		// body had arrived, or whose answer was ready, during it.
		ReadTimeout:    0,
		WriteTimeout:   0,
		IdleTimeout:    hs.IdleTimeout,
		MaxHeaderBytes: hs.MaxHeaderBytes,
		HTTP2:          hs.HTTP2,
		ErrorLog:       hs.ErrorLog,
	}
	h2 := &http2.Server{}
	if err := http2.ConfigureServer(one, h2); err != nil {
		hs.ErrorLog.Printf("http2: %v", err)
		return
	}
	ctx := base
	if c != nil {
		ctx = context.WithValue(base, connKey{}, c)
		c.table.mu.Lock()
		c.h2, c.idleSince = true, time.Now()
		c.shutdown = func() {
			stop, cancel := context.WithCancel(context.Background())
			cancel() // Shutdown runs the GOAWAY hook, then need not wait
			_ = one.Shutdown(stop)
		}
		if _, ok := c.table.conns[c]; ok {
			c.table.placeLocked(c, true)
		}
		c.table.mu.Unlock()
	}
	h2.ServeConn(tc, &http2.ServeConnOpts{Context: ctx, BaseConfig: one, Handler: writeTimeout(hs.WriteTimeout, bodyTimeout(hs.ReadTimeout, h))})
}

// bodyTimeout bounds reading each request body to d, as ReadTimeout does
// for HTTP/1.1, less the pauses of the process meanwhile. When it expires
// the body is closed: the handler's next read fails.
func bodyTimeout(d time.Duration, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &timedBody{ReadCloser: r.Body}
		b.pauseTimer = startPauseTimer(d, metricsOf(r.Context()), func() { _ = b.ReadCloser.Close() })
		defer b.stop()
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

// writeTimeout bounds each HTTP/2 request's handler and response to d,
// as WriteTimeout does, less the pauses of the process meanwhile. When it
// expires the stream is reset, as x/net does at its own deadline. What
// the handler left buffered is flushed before the deadline ends, so a
// client announcing a zero window cannot hold the stream for ever; only
// the closing empty frame is left to x/net, and a client that reads no
// byte at all is WriteByteTimeout's (Limits.http2Config).
func writeTimeout(d time.Duration, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		t := startPauseTimer(d, metricsOf(r.Context()), func() {
			// A deadline in the past resets the stream at once.
			_ = rc.SetWriteDeadline(time.Now().Add(-time.Second))
		})
		defer t.stop()
		h.ServeHTTP(w, r)
		_ = rc.Flush()
	})
}

// pauseTimer runs expire once d has passed while the process ran: a timer
// that fires during or just after a pause is put off by the pause's
// length (deadline.extend), as the connections' deadlines are. stop
// cancels it; expire never runs after stop returns.
type pauseTimer struct {
	metrics *serverMetrics
	expire  func()
	mu      sync.Mutex
	dl      deadline
	timer   *time.Timer
	done    bool
}

func startPauseTimer(d time.Duration, m *serverMetrics, expire func()) *pauseTimer {
	t := &pauseTimer{metrics: m, expire: expire}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dl = deadline{t: now.Add(d), set: now, paused: pauses.total()}
	t.timer = time.AfterFunc(d, t.fire)
	return t
}

func (t *pauseTimer) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	if t.dl.extend() {
		t.metrics.extended()
		t.timer.Reset(time.Until(t.dl.t))
		return
	}
	t.done = true
	t.expire()
}

func (t *pauseTimer) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	t.timer.Stop()
}

// timedBody is a request body whose reading ends at its pauseTimer: it
// is closed then. Reaching the end of the body stops the timer.
type timedBody struct {
	io.ReadCloser
	*pauseTimer
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.stop()
	}
	return n, err
}

// drain closes the listener, sends GOAWAY on HTTP/2 connections, waits
// until no accepted connection is reading or serving a request, then
// shuts srv down; all within timeout.
//
// http.Server.Shutdown alone is not enough: it drops a request it reads
// after shutdown began, so a client that had just connected got EOF. A
// connection that never sends a request holds the wait until the timeout
// (bounded anyway by ReadHeaderTimeout); the manager's graceful shutdown
// timeout usually ends the process first.
func drain(srv *http.Server, l net.Listener, t *connTable, timeout time.Duration, log logr.Logger) error {
	deadline := time.Now().Add(timeout)
	_ = l.Close()
	t.goAwayAll()
	for t.busy() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error(err, "server did not drain in time; closing connections")
		return srv.Close()
	}
	return nil
}

// logWriter turns net/http's error log lines into structured log entries.
type logWriter struct{ logger logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("http server error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Current holds the Server a wrapper builds when it starts (the webhook's
// and the discovery package's), so that the wrapper's readiness check and
// address can be asked before, during and after Start.
type Current struct{ p atomic.Pointer[Server] }

// Set records s as the wrapper's server.
func (c *Current) Set(s *Server) { c.p.Store(s) }

// Ready is s.Ready, or an error naming name before Set.
func (c *Current) Ready(name string, r *http.Request) error {
	s := c.p.Load()
	if s == nil {
		return fmt.Errorf("%s server has not started", name)
	}
	return s.Ready(r)
}

// ListenAddr is s.ListenAddr, or "" before Set.
func (c *Current) ListenAddr() string {
	if s := c.p.Load(); s != nil {
		return s.ListenAddr()
	}
	return ""
}
