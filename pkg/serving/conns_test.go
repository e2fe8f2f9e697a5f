package serving

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
}

// keepAlive opens a TLS HTTP/1.1 connection, sends one request on it and
// reads the answer, leaving the connection idle.
func keepAlive(t *testing.T, ts *testServer) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	if resp := roundTrip(t, c, br, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	return c, br
}

const request = "GET / HTTP/1.1\r\nHost: test\r\n\r\n"

// roundTrip writes the rest of a request (all of it when sent is empty)
// and reads its response.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, sent string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, strings.TrimPrefix(request, sent)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// closedByServer waits until the server closes c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// 1,100 idle keep-alive connections, more than MaxConnections, do not
// stop a fresh connection being served, and readiness does not depend on
// a free slot.
func TestIdleConnectionsCannotBeHoarded(t *testing.T) {
	l := DefaultLimits()
	ts := start(t, &Server{Handler: okHandler(), Limits: l}, false)
	const idle = 1100
	tlsCfg := &tls.Config{RootCAs: ts.pool, NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	for i := range idle {
		c, err := tls.Dial("tcp", ts.addr, tlsCfg)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprint(c, request)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if err := ts.Ready(nil); err != nil {
		t.Errorf("not ready with %d idle connections held: %v", idle, err)
	}
	// A client with the API server's webhook timeout, on a fresh connection.
	c := ts.client(false)
	c.Timeout = 10 * time.Second
	resp, err := c.Get(ts.url("/"))
	if err != nil {
		t.Fatalf("fresh connection with %d idle ones held: %v", idle, err)
	}
	resp.Body.Close()
	tb := ts.table()
	t.Logf("open connections %d, closed by the policy %d", tb.count(), tb.closed.Load())
	if n := tb.count(); n > l.MaxConnections {
		t.Errorf("%d connections open, more than MaxConnections %d", n, l.MaxConnections)
	}
	if tb.closed.Load() < idle+1-int64(l.MaxConnections) {
		t.Errorf("the policy closed %d connections, want at least %d", tb.closed.Load(), idle+1-l.MaxConnections)
	}
}

// An idle HTTP/1.1 connection chosen for closing while its next request
// arrives is not closed under it: the request is answered with
// "Connection: close". One with nothing arriving is closed; the
// longest-idle goes first.
func TestEvictionHTTP1(t *testing.T) {
	l := DefaultLimits()
	l.MaxConnections = 2
	m := NewMetrics(prometheus.NewRegistry())
	ts := start(t, &Server{Handler: okHandler(), Limits: l, Metrics: m}, false)
	older, _ := keepAlive(t, ts)
	busy, busyR := keepAlive(t, ts)

	// The next request on busy has begun to arrive: part of its headers.
	sent := request[:10]
	if _, err := io.WriteString(busy, sent); err != nil {
		t.Fatal(err)
	}
	tb := ts.table()
	eventually(t, 10*time.Second, "older idle and the partial request read on busy", func() bool {
		o, b := tb.find(older.LocalAddr()), tb.find(busy.LocalAddr())
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return o != nil && b != nil && o.state == http.StateIdle && b.state == http.StateIdle && b.gotBytes.Load()
	})
	// Two more connections: two must go, older (idle) and busy.
	keepAlive(t, ts)
	keepAlive(t, ts)

	closedByServer(t, older)
	resp := roundTrip(t, busy, busyR, sent)
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("request arriving at eviction: HTTP %d, Connection: close = %t; want 200 and close", resp.StatusCode, resp.Close)
	}
	closedByServer(t, busy)
	// older, and maybe the third connection once idle: it may be still
	// open when the fourth arrives.
	if idle, closing := evicted(m, evictClosedIdle), evicted(m, evictConnectionClose); idle < 1 || closing != 1 {
		t.Errorf("evictions closed_idle %v, connection_close %v; want at least 1, and 1", idle, closing)
	}
}

// goAwayWatcher is a client connection that reports when a GOAWAY frame
// arrives and can hold the client's writes.
type goAwayWatcher struct {
	net.Conn
	mu      sync.Mutex
	hold    chan struct{} // when set, the next HEADERS write waits for it to close
	held    chan struct{} // closed when that write is held
	goAway  chan struct{} // closed on GOAWAY
	gotAway bool
	buf     []byte
}

func (w *goAwayWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	hold, held := w.hold, w.held
	isHeaders := len(p) >= 9 && http2.FrameType(p[3]) == http2.FrameHeaders
	if isHeaders {
		w.hold = nil
	}
	w.mu.Unlock()
	if hold != nil && isHeaders {
		close(held)
		<-hold
	}
	return w.Conn.Write(p)
}

// Read parses the frame headers going by to spot GOAWAY.
func (w *goAwayWatcher) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p[:n]...)
	for len(w.buf) >= 9 {
		size := int(w.buf[0])<<16 | int(w.buf[1])<<8 | int(w.buf[2])
		if len(w.buf) < 9+size {
			break
		}
		if http2.FrameType(w.buf[3]) == http2.FrameGoAway && !w.gotAway {
			w.gotAway = true
			close(w.goAway)
		}
		w.buf = w.buf[9+size:]
	}
	return n, err
}

// An HTTP/2 client that sends a request on a connection at the moment the
// policy closes it gets no error: the connection gets GOAWAY, and the
// request, which the server never took, is retried on a new connection.
// Closing the connection instead would fail the request.
func TestEvictionHTTP2(t *testing.T) {
	l := DefaultLimits()
	l.MaxConnections = 1
	var served sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		served.Store(string(b), true)
		_, _ = io.WriteString(w, "ok")
	})
	m := NewMetrics(prometheus.NewRegistry())
	ts := start(t, &Server{Handler: h, Limits: l, Metrics: m}, false)
	var first *goAwayWatcher
	var dials int
	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ts.pool, NextProtos: []string{"h2"}},
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			dials++
			w := &goAwayWatcher{Conn: c, goAway: make(chan struct{})}
			if first == nil {
				first = w
			}
			return w, nil
		},
	}
	defer tr.CloseIdleConnections()
	post := func(body string) error {
		req, _ := http.NewRequest(http.MethodPost, ts.url("/"), strings.NewReader(body))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
			return fmt.Errorf("HTTP %d %q", resp.StatusCode, b)
		}
		return nil
	}
	if err := post("first"); err != nil {
		t.Fatal(err)
	}
	// The next request's frames are held in the client while a second
	// connection makes the policy close the first one.
	first.mu.Lock()
	first.hold, first.held = make(chan struct{}), make(chan struct{})
	hold, held := first.hold, first.held
	first.mu.Unlock()
	result := make(chan error, 1)
	go func() { result <- post("second") }()
	<-held
	other, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	select {
	case <-first.goAway:
	case <-time.After(10 * time.Second):
		t.Fatal("no GOAWAY on the connection the policy chose")
	}
	close(hold) // the request's frames now reach the server, after GOAWAY
	if err := <-result; err != nil {
		t.Fatalf("request sent at the moment of eviction: %v", err)
	}
	if _, ok := served.Load("second"); !ok || dials < 2 {
		t.Errorf("second request served = %t over %d connections; want it served on a new one", ok, dials)
	}
	if ts.table().closed.Load() == 0 {
		t.Error("the policy closed nothing")
	}
	if got := evicted(m, evictGoAway); got < 1 {
		t.Errorf("evictions goaway = %v, want at least 1", got)
	}
}

// Readiness does not dial the public listener; it needs a certificate.
func TestReadyNeedsCertificate(t *testing.T) {
	s := &Server{Name: "test", TLS: &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate yet")
	}}}
	if err := s.Ready(nil); err == nil {
		t.Error("ready before start")
	}
	s.started = true
	if err := s.Ready(nil); err == nil || !strings.Contains(err.Error(), "no certificate yet") {
		t.Errorf("Ready = %v, want the certificate error", err)
	}
}

// find is the server side of the client connection at addr.
func (t *connTable) find(addr net.Addr) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if c.RemoteAddr().String() == addr.String() {
			return c
		}
	}
	return nil
}

// pipeConn is a table's conn over one end of a pipe; the other end is
// closed with the test.
func pipeConn(tb testing.TB, t *connTable) *conn {
	a, b := net.Pipe()
	tb.Cleanup(func() { a.Close(); b.Close() })
	return &conn{Conn: a, table: t, opened: time.Now(), state: http.StateNew}
}

// Past the cap, each new connection closes the longest-idle one, by when
// it last became idle, and the table's lists follow every change of state.
func TestEvictionTakesLongestIdleFirst(t *testing.T) {
	tb := newConnTable(4, false)
	var cs []*conn
	for range 4 {
		c := pipeConn(t, tb)
		if !tb.add(c, "") {
			t.Fatal("refused below the cap")
		}
		tb.connState(c, http.StateActive)
		tb.connState(c, http.StateIdle)
		cs = append(cs, c)
	}
	// cs[0] serves another request: now cs[1] has been idle longest.
	tb.connState(cs[0], http.StateActive)
	tb.connState(cs[0], http.StateIdle)
	if !tb.add(pipeConn(t, tb), "") {
		t.Fatal("a fresh connection was refused while idle ones could close")
	}
	tb.mu.Lock()
	var gone []int
	for i, c := range cs {
		if c.goingAway {
			gone = append(gone, i)
		}
	}
	idle, fresh, going := tb.idle.Len(), tb.fresh.Len(), tb.going
	tb.mu.Unlock()
	if fmt.Sprint(gone) != "[1]" {
		t.Errorf("closed connections %v, want [1] (the longest idle)", gone)
	}
	if idle != 3 || fresh != 1 || going != 1 {
		t.Errorf("idle list %d, fresh list %d, going away %d; want 3, 1, 1", idle, fresh, going)
	}
	tb.connState(cs[1], http.StateClosed)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.going != 0 || tb.stayingLocked() != 4 {
		t.Errorf("after the close: going away %d, staying %d; want 0, 4", tb.going, tb.stayingLocked())
	}
}

// nopConn is a connection that only closes, for the table alone.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// The cost of a connection accepted past the cap, with n idle ones held:
// it must not grow with n (compare idle=64 and idle=4096; scanning and
// sorting them all made it grow as n log n).
func BenchmarkAcceptPastCap(b *testing.B) {
	for _, n := range []int{64, 4096} {
		b.Run(fmt.Sprintf("idle=%d", n), func(b *testing.B) {
			tb := newConnTable(n, false)
			accept := func() *conn {
				c := &conn{Conn: nopConn{}, table: tb, opened: time.Now(), state: http.StateNew}
				tb.add(c, "")
				tb.connState(c, http.StateActive)
				tb.connState(c, http.StateIdle)
				return c
			}
			for range n {
				accept()
			}
			b.ResetTimer()
			for range b.N {
				tb.mu.Lock()
				longest := tb.idle.Front().Value.(*conn)
				tb.mu.Unlock()
				accept()
				// The evicted connection's close, as net/http reports it.
				tb.connState(longest, http.StateClosed)
			}
			if tb.count() != n {
				b.Fatalf("%d connections in the table, want %d", tb.count(), n)
			}
		})
	}
}

// A connection past its grace whose ClientHello waits unread in the
// receive queue (a server starved of CPU has not read it yet) has asked:
// it is not stalled, and not closed as one. A connection that sent
// nothing is.
func TestStalledCountsUnreadClientHello(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tb := newConnTable(4, true)
	accept := func(send []byte) *conn {
		t.Helper()
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		raw, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		if len(send) > 0 {
			if _, err := cc.Write(send); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the bytes to arrive", func() bool { return pendingInput(raw) })
		}
		return &conn{Conn: raw, table: tb, opened: time.Now().Add(-2 * tb.newGrace), state: http.StateNew}
	}
	// The first bytes of a TLS record carrying a ClientHello.
	waiting, silent := accept([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}), accept(nil)
	now := time.Now()
	if tb.stalled(waiting, now) {
		t.Error("a connection whose ClientHello waits in the receive queue counts as stalled")
	}
	if !tb.stalled(silent, now) {
		t.Error("a connection that sent nothing past its grace does not count as stalled")
	}
	fresh := accept(nil)
	fresh.opened = time.Now()
	if tb.stalled(fresh, time.Now()) {
		t.Error("a connection within its grace counts as stalled")
	}
}

// At most MaxHandshakes TLS handshakes compute at once (GetCertificate
// runs inside the gate, after the ClientHello); the others wait and then
// complete, in full, and a client that leaves in the middle gives its slot
// back.
func TestHandshakesAreGated(t *testing.T) {
	const gate, clients = 2, 12
	var inside, most atomic.Int32
	cert, pool := serverCert(t)
	l := DefaultLimits()
	l.MaxHandshakes = gate
	cfg, err := TLSConfig(TLSOptions{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // the computing a handshake does
		return &cert, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	// plain: start leaves the TLS configuration given here alone.
	ts := start(t, &Server{Limits: l, Metrics: m, TLS: cfg, Handler: okHandler()}, true)

	// One client sends its ClientHello and leaves before the answer.
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	hc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	go func() { _ = hc.Handshake() }()
	eventually(t, 10*time.Second, "the ClientHello to be read", func() bool { return inside.Load() > 0 })
	raw.Close()

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pool})
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("handshake behind the gate: %v", err)
		}
	}
	if got := most.Load(); got > gate {
		t.Errorf("%d handshakes computed at once, the gate is %d", got, gate)
	}
	if got := testutil.ToFloat64(m.handshakeWaits.WithLabelValues("test")); got == 0 {
		t.Error("no handshake counted as waiting, with 12 clients behind a gate of 2")
	}
}

// Past the cap, an address holding half of it or more gets no new
// connection: it is refused at once, without making another go; another
// address's new connection evicts the hoarder's idlest, not the idlest of
// anyone's.
func TestHoarderGetsNoMoreConnections(t *testing.T) {
	tb := newConnTable(4, false)
	idle := func(c *conn) {
		tb.connState(c, http.StateActive)
		tb.connState(c, http.StateIdle)
	}
	api := pipeConn(t, tb)
	if !tb.add(api, "10.0.0.1") {
		t.Fatal("refused below the cap")
	}
	idle(api) // the longest idle of all
	var hoard []*conn
	for range 3 {
		c := pipeConn(t, tb)
		if !tb.add(c, "10.0.0.2") {
			t.Fatal("refused below the cap")
		}
		idle(c)
		hoard = append(hoard, c)
	}
	if tb.add(pipeConn(t, tb), "10.0.0.2") {
		t.Fatal("a new connection of the address holding the most was accepted past the cap")
	}
	if api.goingAway || hoard[0].goingAway {
		t.Fatal("a refused connection made another go")
	}
	if !tb.add(pipeConn(t, tb), "10.0.0.3") {
		t.Fatal("a new connection of another address was refused past the cap")
	}
	if api.goingAway {
		t.Error("the other address's longest-idle connection was evicted, not the hoarder's")
	}
	if !hoard[0].goingAway {
		t.Error("the hoarder's longest-idle connection was not evicted")
	}
	tb.mu.Lock()
	if got := tb.sources["10.0.0.2"].n; got != 2 || tb.most != 2 {
		t.Errorf("hoarder holds %d, most %d; want 2, 2", got, tb.most)
	}
	tb.mu.Unlock()
	for _, c := range append(hoard, api) {
		tb.connState(c, http.StateClosed)
	}
	tb.mu.Lock()
	if len(tb.sources) != 1 || tb.most != 1 {
		t.Errorf("after the closes: %d addresses, most %d; want 1 (10.0.0.3), 1", len(tb.sources), tb.most)
	}
	tb.mu.Unlock()

	// An address under half the cap is served past it as before: the
	// idlest goes. Holding half, it is refused while another holds some;
	// alone, it is served, evicting its own.
	one := newConnTable(4, false)
	var conns []*conn
	for _, addr := range []string{"10.0.0.2", "10.0.0.2", "10.0.0.1", "10.0.0.3"} {
		c := pipeConn(t, one)
		one.add(c, addr)
		one.connState(c, http.StateActive)
		one.connState(c, http.StateIdle)
		conns = append(conns, c)
	}
	if !one.add(pipeConn(t, one), "10.0.0.1") {
		t.Fatal("an address holding a quarter of the cap was refused past it")
	}
	if !conns[0].goingAway {
		t.Error("the hoarder's longest-idle connection was not evicted")
	}
	if one.add(pipeConn(t, one), "10.0.0.1") {
		t.Error("an address holding half the cap got a connection past it while another holds some")
	}
	one.connState(conns[1], http.StateClosed) // 10.0.0.2's last
	one.connState(conns[3], http.StateClosed) // 10.0.0.3's
	for range 2 {
		one.add(pipeConn(t, one), "10.0.0.1") // up to the cap
	}
	if !one.add(pipeConn(t, one), "10.0.0.1") {
		t.Error("an address alone was refused past the cap")
	}
}
