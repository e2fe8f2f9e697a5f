package webhook

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// connTracker records each connection's state so that shutdown can wait for
// the requests already accepted.
//
// http.Server.Shutdown alone is not enough: it drops a request it reads
// after shutdown began, so a client that had just connected got EOF. And
// the manager's context, cancelled by SIGTERM, must not reach requests:
// it aborted TLS handshakes in progress and denied admissions waiting on a
// live ServiceAccount lookup.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

// track is an http.Server ConnState hook.
func (t *connTracker) track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[net.Conn]http.ConnState{}
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, c)
	default:
		t.conns[c] = st
	}
}

// busy counts connections reading or serving a request.
func (t *connTracker) busy() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, st := range t.conns {
		if st == http.StateNew || st == http.StateActive {
			n++
		}
	}
	return n
}

// drain closes the listener, waits until no accepted connection is reading
// or serving a request, then shuts srv down; all within timeout. A
// connection that never sends a request holds the wait until the timeout
// (bounded anyway by ReadHeaderTimeout); the manager's graceful shutdown
// timeout usually ends the process first.
func (t *connTracker) drain(srv *http.Server, l net.Listener, timeout time.Duration, logger logr.Logger) error {
	deadline := time.Now().Add(timeout)
	_ = l.Close()
	for t.busy() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Error(err, "webhook server did not drain in time; closing connections")
		return srv.Close()
	}
	return nil
}
