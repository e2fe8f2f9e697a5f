package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one accepted connection. Its deadlines survive pauses of the
// process (pauseClock), and the table knows enough of its state to tell
// whether a request may be in flight on it.
type conn struct {
	net.Conn
	table  *connTable
	opened time.Time

	// gotBytes is set by Read when bytes arrive and cleared when a handler
	// returns: an HTTP/1.1 client sends its next request only once it has
	// the answer, which goes out after that, so bytes read later are the
	// next request.
	gotBytes atomic.Bool
	// helloSeen is set when the TLS ClientHello has arrived.
	helloSeen atomic.Bool

	dmu sync.Mutex
	rd  deadline
	wd  deadline

	// Guarded by table.mu.
	state     http.ConnState
	idleSince time.Time
	h2        bool
	streams   int    // HTTP/2 requests in flight
	shutdown  func() // HTTP/2: send GOAWAY, close when the streams are done
	goingAway bool   // GOAWAY sent, or Connection: close promised
	// closeAfter asks the next HTTP/1.1 response to carry
	// "Connection: close" (and an HTTP/2 one to send GOAWAY).
	closeAfter bool
}

// pauseAware is false only in the reproduction of the lost requests, to
// show them.
var pauseAware = true

// deadline is a deadline as net/http set it, with the pause clock then.
type deadline struct {
	t      time.Time
	set    time.Time
	paused time.Duration
}

// extend moves d by the pauses since it was set; it reports whether it
// did. A deadline set in the past (net/http aborts a read that way) or
// none is left alone.
func (d *deadline) extend() bool {
	if !pauseAware || d.t.IsZero() || !d.t.After(d.set) {
		return false
	}
	p := pauses.total()
	if p <= d.paused {
		return false
	}
	d.t, d.paused = d.t.Add(p-d.paused), p
	return true
}

func (c *conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	now, p := time.Now(), pauses.total()
	c.rd, c.wd = deadline{t, now, p}, deadline{t, now, p}
	c.dmu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	c.rd = deadline{t, time.Now(), pauses.total()}
	c.dmu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.wd = deadline{t, time.Now(), pauses.total()}
	c.dmu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.gotBytes.Store(true)
		}
		if n > 0 || !isTimeout(err) {
			return n, err
		}
		c.dmu.Lock()
		extended, t := c.rd.extend(), c.rd.t
		c.dmu.Unlock()
		if !extended {
			return n, err
		}
		if err := c.Conn.SetReadDeadline(t); err != nil {
			return 0, err
		}
	}
}

func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for {
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || !isTimeout(err) {
			return written, err
		}
		c.dmu.Lock()
		extended, t := c.wd.extend(), c.wd.t
		c.dmu.Unlock()
		if !extended {
			return written, err
		}
		if err := c.Conn.SetWriteDeadline(t); err != nil {
			return written, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connTable tracks the open connections of one server: for the
// connection policy (evict) and for drain.
type connTable struct {
	max int // Limits.MaxConnections
	tls bool
	// newGrace is how long a connection may go without a first request
	// before it counts as idle.
	newGrace time.Duration

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed atomic.Int64 // connections the policy closed, for tests and logs
}

func newConnTable(max int, tls bool) *connTable {
	pauses.start()
	return &connTable{max: max, tls: tls, newGrace: time.Second, conns: map[*conn]struct{}{}}
}

// stalled says whether c, not yet past its first request, has asked
// nothing for newGrace: no ClientHello (TLS), or no byte (plain HTTP).
// A slow request after that is ReadHeaderTimeout's business.
func (t *connTable) stalled(c *conn, now time.Time) bool {
	if now.Sub(c.opened) <= t.newGrace {
		return false
	}
	if t.tls {
		return !c.helloSeen.Load()
	}
	return !c.gotBytes.Load()
}

// listener wraps accepted connections in conn and applies the policy: a
// new connection is always accepted (up to twice MaxConnections), and
// past MaxConnections it makes the idlest connections close.
type listener struct {
	net.Listener
	table *connTable
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &conn{Conn: raw, table: l.table, opened: time.Now(), state: http.StateNew}
		if l.table.add(c) {
			return c, nil
		}
		_ = raw.Close()
	}
}

// add registers c, evicting connections past max; it refuses c when even
// that leaves twice max open and not going away.
func (t *connTable) add(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if over := len(t.conns) + 1 - t.max; over > 0 {
		t.evictLocked(over)
	}
	// Connections going away are about to close; only the others count
	// toward the hard bound.
	staying := 0
	for o := range t.conns {
		if !o.goingAway {
			staying++
		}
	}
	if staying >= 2*t.max {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *connTable) remove(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// evictLocked makes up to n connections go, the idlest first, by the rule
// that no request may be lost to a close the client was not told of:
//
//   - an HTTP/2 connection gets GOAWAY (a graceful close of that one
//     connection): streams in flight finish, and a stream the client
//     opens meanwhile is refused with a reason that makes clients retry
//     it elsewhere;
//   - an idle HTTP/1.1 connection with nothing in its receive queue is
//     closed: there is no response to mark. This is the one race left: a
//     request already sent but still on the wire meets the close. Taking
//     the longest-idle ones first makes it unlikely, since clients (Go's
//     Transport, the API server's) reuse their most recently used
//     connection first;
//   - an HTTP/1.1 connection with a request arriving or in flight is not
//     closed: its response carries "Connection: close";
//   - a connection that has sent no ClientHello (or, in plain HTTP, no
//     byte) for newGrace after opening is closed: nothing was asked on it.
//
// It returns how many it made go; busy connections are not counted.
func (t *connTable) evictLocked(n int) int {
	type candidate struct {
		c    *conn
		rank int // 0: idle, 1: stalled new
		at   time.Time
	}
	now := time.Now()
	var cands []candidate
	for c := range t.conns {
		switch {
		case c.goingAway:
		case c.h2 && c.streams == 0:
			cands = append(cands, candidate{c, 0, c.idleSince})
		case !c.h2 && c.state == http.StateIdle:
			cands = append(cands, candidate{c, 0, c.idleSince})
		case !c.h2 && c.state == http.StateNew && t.stalled(c, now):
			cands = append(cands, candidate{c, 1, c.opened})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return a.at.Compare(b.at)
	})
	done := 0
	for _, cd := range cands {
		if done == n {
			break
		}
		c := cd.c
		switch {
		case c.h2:
			c.goingAway = true
			go c.shutdown()
		case c.state == http.StateIdle && (c.gotBytes.Load() || pendingInput(c.Conn)):
			// A request is arriving: answer it, and say so on the answer.
			c.closeAfter, c.goingAway = true, true
		default:
			c.goingAway = true
			_ = c.Conn.Close()
		}
		t.closed.Add(1)
		done++
	}
	return done
}

// connState is the http.Server ConnState hook.
func (t *connTable) connState(nc net.Conn, st http.ConnState) {
	c := connOf(nc)
	if c == nil {
		return
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		t.remove(c)
		return
	}
	t.mu.Lock()
	if st == http.StateIdle && c.closeAfter {
		// Its last response carried "Connection: close"; net/http closes
		// it next. Until then it is no candidate.
		c.goingAway = true
	}
	c.state = st
	c.idleSince = time.Now()
	t.mu.Unlock()
}

// connOf finds our conn under a *tls.Conn.
func connOf(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// busy counts connections reading or serving a request.
func (t *connTable) busy() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for c := range t.conns {
		if (c.h2 && c.streams > 0) || (!c.h2 && (c.state == http.StateNew || c.state == http.StateActive)) {
			n++
		}
	}
	return n
}

// goAwayAll starts the graceful close of every HTTP/2 connection.
func (t *connTable) goAwayAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if c.h2 && c.shutdown != nil && !c.goingAway {
			c.goingAway = true
			go c.shutdown()
		}
	}
}

// count is the number of open connections.
func (t *connTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

type connKey struct{}

// begin records a request starting on the connection of ctx; the returned
// func records its end. closeAfter says whether its response must close
// the connection.
func (t *connTable) begin(ctx context.Context) (end func(), closeAfter func() bool) {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil {
		return func() {}, func() bool { return false }
	}
	t.mu.Lock()
	if c.h2 {
		c.streams++
	}
	t.mu.Unlock()
	end = func() {
		t.mu.Lock()
		if !c.h2 {
			c.gotBytes.Store(false)
		}
		if c.h2 {
			c.streams--
			if c.streams == 0 {
				c.idleSince = time.Now()
			}
		}
		t.mu.Unlock()
	}
	closeAfter = func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		return c.closeAfter
	}
	return end, closeAfter
}

// marking is the outermost handler: it counts HTTP/2 streams per
// connection and puts "Connection: close" on a response whose connection
// the policy chose (for HTTP/2, net/http turns that into GOAWAY).
func (t *connTable) marking(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		end, closeAfter := t.begin(r.Context())
		defer end()
		next.ServeHTTP(&markingWriter{ResponseWriter: w, closeAfter: closeAfter}, r)
	})
}

// markingWriter adds "Connection: close" when the headers go out, if the
// connection was chosen to close by then.
type markingWriter struct {
	http.ResponseWriter
	closeAfter  func() bool
	wroteHeader bool
}

func (w *markingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.closeAfter() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *markingWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *markingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// notingHello wraps cfg so that the table learns which connections have
// sent their ClientHello.
func notingHello(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	prev := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if c, ok := hello.Conn.(*conn); ok {
			c.helloSeen.Store(true)
		}
		if prev != nil {
			return prev(hello)
		}
		return nil, nil
	}
	return cfg
}
