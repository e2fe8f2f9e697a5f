package serving

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime"
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
	src    *source // the client's address; nil when it has none (a pipe)

	// gotBytes is set by Read when bytes arrive and cleared when a handler
	// returns: an HTTP/1.1 client sends its next request only once it has
	// the answer, which goes out after that, so bytes read later are the
	// next request.
	gotBytes atomic.Bool
	// helloSeen is set when the TLS ClientHello has arrived.
	helloSeen atomic.Bool
	// handshaking holds a slot of the table's handshake gate: from the
	// ClientHello to the server's first write (or the close).
	handshaking atomic.Bool

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
	// elem is c in the table's idle or fresh list (in), if in one.
	elem *list.Element
	in   *list.List
	// asked: past newGrace, it had asked something; it can no longer
	// become stalled, so it leaves the fresh list for good.
	asked bool
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
		c.table.metrics.extended()
		if err := c.Conn.SetReadDeadline(t); err != nil {
			return 0, err
		}
	}
}

func (c *conn) Write(p []byte) (int, error) {
	c.leaveHandshake()
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
		c.table.metrics.extended()
		if err := c.Conn.SetWriteDeadline(t); err != nil {
			return written, err
		}
	}
}

func (c *conn) Close() error {
	c.leaveHandshake()
	return c.Conn.Close()
}

// enterHandshake waits for a slot of the handshake gate, if there is one;
// the slot is given back by the server's first write on c (its whole
// first flight, after the signature: crypto/tls buffers it) or by the
// close of c, whichever comes first.
func (c *conn) enterHandshake(ctx context.Context) {
	gate := c.table.handshakes
	if gate == nil {
		return
	}
	select {
	case gate <- struct{}{}:
	default:
		c.table.metrics.handshakeWaited()
		select {
		case gate <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
	c.handshaking.Store(true)
}

func (c *conn) leaveHandshake() {
	if c.handshaking.Load() && c.handshaking.CompareAndSwap(true, false) {
		<-c.table.handshakes
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

	metrics *serverMetrics // nil: not counted
	// handshakes is the gate of TLS handshakes computing at once
	// (Limits.MaxHandshakes); nil: none.
	handshakes chan struct{}

	mu    sync.Mutex
	conns map[*conn]struct{}
	// idle holds the connections that may be closed now, the longest idle
	// first; fresh the HTTP/1.1 ones before their first request, the
	// oldest first. Eviction takes from their fronts: scanning and
	// sorting every connection on each accept past the cap starved the
	// process of CPU under 4,400 idle connections.
	idle, fresh list.List
	going       int          // connections going away
	closed      atomic.Int64 // connections the policy closed, for tests and logs

	// sources counts the staying connections of each client address;
	// holding[n] is how many addresses hold n, and most the largest n.
	// Past max, a new connection from an address that holds half of max
	// or more, while other addresses hold some, is refused at once, and eviction takes from the largest
	// holder first: a client hoarding connections then gets no more, at
	// the cost of an accept and a close, instead of making the server
	// handshake with its reconnects and close everybody else's. The API
	// server multiplexes its calls over a few connections (HTTP/2), or
	// opens one per call in flight (HTTP/1.1): half of max is 512 calls
	// in flight to one replica.
	sources map[string]*source
	holding map[int]int
	most    int
}

// source is one client address of a connTable.
type source struct {
	addr string
	n    int // staying connections
}

// sourceLocked returns the source of addr, creating it.
func (t *connTable) sourceLocked(addr string) *source {
	s := t.sources[addr]
	if s == nil {
		s = &source{addr: addr}
		t.sources[addr] = s
	}
	return s
}

// countLocked moves s's count by d (+1 or -1), keeping holding and most.
func (t *connTable) countLocked(s *source, d int) {
	if s == nil {
		return
	}
	if s.n > 0 {
		t.holding[s.n]--
	}
	s.n += d
	if s.n > 0 {
		t.holding[s.n]++
	} else {
		delete(t.sources, s.addr)
	}
	switch {
	case s.n > t.most:
		t.most = s.n
	case t.holding[t.most] == 0 && t.most > 0:
		delete(t.holding, t.most)
		t.most-- // s now holds most-1
	}
}

// hoardingLocked says whether s holds half of max or more while another
// address holds connections too: a new connection from it past max is
// refused. An address alone is served as before (its idlest go): nobody
// else's connections are at stake.
func (t *connTable) hoardingLocked(s *source) bool {
	return s != nil && s.n > 0 && 2*s.n >= t.max && len(t.sources) > 1
}

func newConnTable(max int, tls bool) *connTable {
	pauses.start()
	return &connTable{max: max, tls: tls, newGrace: time.Second, conns: map[*conn]struct{}{},
		sources: map[string]*source{}, holding: map[int]int{}}
}

// setHandshakes gates TLS handshakes to n at once (0: twice GOMAXPROCS).
func (t *connTable) setHandshakes(n int) {
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	t.handshakes = make(chan struct{}, n)
}

// stalled says whether c, not yet past its first request, has asked
// nothing for newGrace: no ClientHello (TLS), or no byte (plain HTTP),
// read or waiting in the receive queue. A server starved of CPU may not
// have read a ClientHello that came at once; a slow request after it is
// ReadHeaderTimeout's business.
func (t *connTable) stalled(c *conn, now time.Time) bool {
	if now.Sub(c.opened) <= t.newGrace {
		return false
	}
	if (t.tls && c.helloSeen.Load()) || (!t.tls && c.gotBytes.Load()) {
		return false
	}
	return !pendingInput(c.Conn)
}

// listener wraps accepted connections in conn and applies the policy: a
// new connection is accepted (up to twice MaxConnections, unless its
// address hoards), and past MaxConnections it makes the idlest
// connections close.
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
		if l.table.add(c, sourceAddr(raw)) {
			return c, nil
		}
		l.table.metrics.connRefused()
		_ = raw.Close()
	}
}

// sourceAddr is the client's IP address of c; "" when it has none.
func sourceAddr(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// add registers c, from client address addr ("" for none), evicting
// connections past max; it refuses c past max when its address holds half
// of max or more (see sources), or when even eviction leaves twice max
// open and not going away.
func (t *connTable) add(c *conn, addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var src *source
	if addr != "" {
		src = t.sourceLocked(addr)
	}
	// Connections going away are about to close; only the others count,
	// or each accept would close as many more as are still closing.
	if over := t.stayingLocked() + 1 - t.max; over > 0 {
		if t.hoardingLocked(src) {
			if src.n == 0 {
				delete(t.sources, addr)
			}
			return false
		}
		t.evictLocked(over)
	}
	if t.stayingLocked() >= 2*t.max {
		if src != nil && src.n == 0 {
			delete(t.sources, addr)
		}
		return false
	}
	c.src = src
	t.countLocked(src, +1)
	t.conns[c] = struct{}{}
	t.placeLocked(c, false)
	return true
}

func (t *connTable) stayingLocked() int { return len(t.conns) - t.going }

func (t *connTable) remove(c *conn) {
	t.mu.Lock()
	if _, ok := t.conns[c]; ok {
		if c.goingAway {
			t.going--
		} else {
			t.countLocked(c.src, -1)
		}
		c.goingAway = true // no list takes it back
		t.placeLocked(c, false)
		delete(t.conns, c)
	}
	t.mu.Unlock()
}

// placeLocked puts c in the list its state belongs to, if any; touched
// says it just became idle again, which moves it to the back.
func (t *connTable) placeLocked(c *conn, touched bool) {
	var want *list.List
	switch {
	case c.goingAway:
	case c.h2 && c.streams == 0, !c.h2 && c.state == http.StateIdle:
		want = &t.idle
	case !c.h2 && c.state == http.StateNew && !c.asked:
		want = &t.fresh
	}
	if c.in == want {
		if touched && want != nil {
			want.MoveToBack(c.elem)
		}
		return
	}
	if c.in != nil {
		c.in.Remove(c.elem)
		c.in, c.elem = nil, nil
	}
	if want != nil {
		c.in, c.elem = want, want.PushBack(c)
	}
}

// goAwayLocked marks c as going away.
func (t *connTable) goAwayLocked(c *conn) {
	if !c.goingAway {
		c.goingAway = true
		t.going++
		t.countLocked(c.src, -1)
	}
	t.placeLocked(c, false)
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
	done := 0
	for done < n && t.idle.Len() > 0 {
		t.evictOneLocked(t.idlestOfMostLocked())
		done++
	}
	now := time.Now()
	for e := t.fresh.Front(); done < n && e != nil; {
		c, next := e.Value.(*conn), e.Next()
		if now.Sub(c.opened) <= t.newGrace {
			break // the rest are newer still
		}
		if t.stalled(c, now) {
			t.evictOneLocked(c)
			done++
		} else {
			c.asked = true
			t.placeLocked(c, false)
		}
		e = next
	}
	return done
}

// hoardScan bounds how far idlestOfMostLocked looks down the idle list.
const hoardScan = 64

// idlestOfMostLocked picks the idle connection to evict: the longest idle
// of an address holding the most connections among the first hoardScan,
// else the longest idle. A hoarder's connections fill the idle list, so
// one is near its front; the scan stays bounded whatever the list holds.
func (t *connTable) idlestOfMostLocked() *conn {
	front := t.idle.Front().Value.(*conn)
	if len(t.sources) < 2 {
		return front
	}
	e := t.idle.Front()
	for i := 0; e != nil && i < hoardScan; i, e = i+1, e.Next() {
		if c := e.Value.(*conn); c.src != nil && c.src.n == t.most {
			return c
		}
	}
	return front
}

// evictOneLocked makes c go, by the rules of evictLocked.
func (t *connTable) evictOneLocked(c *conn) {
	switch {
	case c.h2:
		t.goAwayLocked(c)
		go c.shutdown()
		t.metrics.evicted(evictGoAway)
	case c.state == http.StateIdle && (c.gotBytes.Load() || pendingInput(c.Conn)):
		// A request is arriving: answer it, and say so on the answer.
		c.closeAfter = true
		t.goAwayLocked(c)
		t.metrics.evicted(evictConnectionClose)
	default:
		idle := c.state == http.StateIdle
		t.goAwayLocked(c)
		_ = c.Conn.Close()
		if idle {
			t.metrics.evicted(evictClosedIdle)
		} else {
			t.metrics.evicted(evictClosedUnused)
		}
	}
	t.closed.Add(1)
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
	if _, ok := t.conns[c]; !ok {
		t.mu.Unlock()
		return
	}
	c.state = st
	c.idleSince = time.Now()
	if st == http.StateIdle && c.closeAfter {
		// Its last response carried "Connection: close"; net/http closes
		// it next. Until then it is no candidate.
		t.goAwayLocked(c)
	}
	t.placeLocked(c, true)
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
			t.goAwayLocked(c)
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
		t.placeLocked(c, false)
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
				t.placeLocked(c, true)
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
// sent their ClientHello, and gates the handshakes' computing from there.
func notingHello(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	prev := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if c, ok := hello.Conn.(*conn); ok {
			c.helloSeen.Store(true)
			c.enterHandshake(hello.Context())
		}
		if prev != nil {
			return prev(hello)
		}
		return nil, nil
	}
	return cfg
}
