package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The attacks of the hostile-network tests, as a Pod on the cluster network
// could mount them against a server without client authentication. Each
// runs until stopped, counts what it did and what the server answered in a
// tally, and closes every connection it opened when stopped.
type attack interface {
	// describe says what the attack sends, with its numbers.
	describe() string
	// start launches the attack; it runs until ctx ends.
	start(ctx context.Context)
	// inPlace is nil once the attack holds what it set out to hold.
	inPlace() error
	// wait returns once every goroutine of the attack has returned and
	// its connections are closed (after ctx ended).
	wait()
	counts() *tally
}

// redialPause spaces each attacker's reconnections: a server that closes
// connections is met with new ones, but not with a flood of handshakes (a
// different attack, which the machine's two cores would lose to first).
const redialPause = time.Second

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// announcedBodies opens conns connections and keeps perConn requests open on
// each, every one announcing contentLength bytes of body and sending none:
// HTTP/2 streams when the server speaks HTTP/2, otherwise (the attack
// adapted) conns*perConn HTTP/1.1 connections. A request the server
// finishes (an answer, a reset) is replaced a redialPause later.
type announcedBodies struct {
	addr, method, path, contentType string
	contentLength                   int64
	conns, perConn                  int
	tls                             *tls.Config

	h2     bool
	c      *tally
	opened atomic.Int64 // requests opened so far
	// advertised is the server's last SETTINGS_MAX_CONCURRENT_STREAMS
	// (0 until one is seen): the attack opens no more streams than that.
	advertised atomic.Int64
	wg         sync.WaitGroup
}

func (a *announcedBodies) describe() string {
	if a.h2 {
		return fmt.Sprintf("%d HTTP/2 connections x %d streams, each %s announcing %d MiB and sending none", a.conns, a.perConn, a.method, a.contentLength/mib)
	}
	return fmt.Sprintf("%d HTTP/1.1 connections (no HTTP/2 offered), each %s announcing %d MiB and sending none", a.conns*a.perConn, a.method, a.contentLength/mib)
}

func (a *announcedBodies) counts() *tally { return a.c }

func (a *announcedBodies) inPlace() error {
	per := int64(a.perConn)
	if v := a.advertised.Load(); a.h2 && v > 0 {
		per = min(per, v)
	}
	if n, want := a.opened.Load(), int64(a.conns)*per; n < want {
		return fmt.Errorf("%d of %d requests opened", n, want)
	}
	return nil
}

func (a *announcedBodies) wait() { a.wg.Wait() }

// negotiate finds out whether the server offers HTTP/2 (call before
// describe and start).
func (a *announcedBodies) negotiate(ctx context.Context) error {
	c, err := a.dial(ctx, []string{"h2", "http/1.1"})
	if err != nil {
		return err
	}
	a.h2 = c.ConnectionState().NegotiatedProtocol == "h2"
	return c.Close()
}

func (a *announcedBodies) dial(ctx context.Context, protos []string) (*tls.Conn, error) {
	cfg := a.tls.Clone()
	cfg.NextProtos = protos
	d := &tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

func (a *announcedBodies) start(ctx context.Context) {
	a.c = newTally()
	n, run := a.conns, a.h2Conn
	if !a.h2 {
		n, run = a.conns*a.perConn, a.h1Conn
	}
	for range n {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for ctx.Err() == nil {
				err := run(ctx)
				if ctx.Err() != nil {
					return
				}
				a.c.add("connection ended", errText(err))
				pause(ctx, redialPause)
			}
		}()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// h2Conn runs one HTTP/2 connection with raw frames until it fails or ctx
// ends.
func (a *announcedBodies) h2Conn(ctx context.Context) error {
	c, err := a.dial(ctx, []string{"h2"})
	if err != nil {
		return err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		return errors.New("server did not negotiate h2")
	}
	a.c.add("connections", "")
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	s := &h2Streams{fr: fr, slots: make(chan struct{}, a.perConn), open: map[uint32]bool{}, c: a.c, perConn: a.perConn, advertised: &a.advertised}
	if err := s.write(func() error { return fr.WriteSettings() }); err != nil {
		return err
	}
	readErr := make(chan error, 1)
	go func() { readErr <- s.read() }()

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	authority := a.addr
	for id := uint32(1); ; id += 2 {
		select {
		case <-s.slots:
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return nil
		}
		block.Reset()
		for _, f := range [][2]string{
			{":method", a.method}, {":scheme", "https"}, {":authority", authority}, {":path", a.path},
			{"content-type", a.contentType}, {"content-length", strconv.FormatInt(a.contentLength, 10)},
		} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		s.mu.Lock()
		s.open[id] = true
		s.mu.Unlock()
		if err := s.write(func() error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndHeaders: true})
		}); err != nil {
			return err
		}
		a.opened.Add(1)
	}
}

// h2Streams is the state one HTTP/2 attack connection shares between its
// writer (opening streams) and its reader (server frames).
type h2Streams struct {
	fr         *http2.Framer
	wmu        sync.Mutex
	mu         sync.Mutex
	open       map[uint32]bool
	slots      chan struct{} // one token per stream the writer may open
	c          *tally
	perConn    int
	advertised *atomic.Int64
}

func (s *h2Streams) write(f func() error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return f()
}

// done frees a stream's slot, a redialPause after the server first ends
// it: the attack holds streams open; it is not a flood of requests.
func (s *h2Streams) done(id uint32) {
	s.mu.Lock()
	open := s.open[id]
	delete(s.open, id)
	s.mu.Unlock()
	if open {
		// Never blocks: there are never more tokens than slots.
		time.AfterFunc(redialPause, func() { s.slots <- struct{}{} })
	}
}

func (s *h2Streams) read() error {
	settled := false
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := s.write(s.fr.WriteSettingsAck); err != nil {
				return err
			}
			if settled {
				continue
			}
			settled = true
			n := uint32(s.perConn)
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				s.c.add("server MAX_CONCURRENT_STREAMS "+strconv.Itoa(int(v)), "")
				s.advertised.Store(int64(v))
				n = min(n, v)
			}
			for range n {
				s.slots <- struct{}{}
			}
		case *http2.MetaHeadersFrame:
			s.c.add("answered "+f.PseudoValue("status"), "")
			if f.StreamEnded() {
				s.done(f.StreamID)
			}
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 {
				if err := s.write(func() error { return s.fr.WriteWindowUpdate(0, uint32(n)) }); err != nil {
					return err
				}
			}
			if f.StreamEnded() {
				s.done(f.StreamID)
			}
		case *http2.RSTStreamFrame:
			s.c.add("stream reset "+f.ErrCode.String(), "")
			s.done(f.StreamID)
		case *http2.GoAwayFrame:
			s.c.add("goaway "+f.ErrCode.String(), "")
			return fmt.Errorf("goaway %s", f.ErrCode)
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := s.write(func() error { return s.fr.WritePing(true, f.Data) }); err != nil {
					return err
				}
			}
		}
	}
}

// h1Conn sends one request's headers with the announced length and no
// body, reads whatever the server answers, and waits for it to close.
func (a *announcedBodies) h1Conn(ctx context.Context) error {
	c, err := a.dial(ctx, []string{"http/1.1"})
	if err != nil {
		return err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	a.c.add("connections", "")
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		a.method, a.path, a.addr, a.contentType, a.contentLength); err != nil {
		return err
	}
	a.opened.Add(1)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	a.c.add("answered "+strconv.Itoa(resp.StatusCode), "")
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	// Hold the connection until the server closes it.
	_, err = io.Copy(io.Discard, br)
	return err
}

// bigBodies runs clients goroutines, each with its own keep-alive
// connection, sending body in a loop.
type bigBodies struct {
	url, method, contentType string
	body                     []byte
	clients                  int
	tls                      *tls.Config

	c    *tally
	sent atomic.Int64 // requests whose answer came back
	wg   sync.WaitGroup
}

func (b *bigBodies) describe() string {
	return fmt.Sprintf("%d clients each sending %s with a %.0f MiB body in a loop", b.clients, b.method, float64(len(b.body))/mib)
}

func (b *bigBodies) counts() *tally { return b.c }

func (b *bigBodies) inPlace() error {
	if n := b.sent.Load(); n < int64(b.clients) {
		return fmt.Errorf("%d of %d big requests answered", n, b.clients)
	}
	return nil
}

func (b *bigBodies) wait() { b.wg.Wait() }

func (b *bigBodies) start(ctx context.Context) {
	b.c = newTally()
	for range b.clients {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			tr := &http.Transport{TLSClientConfig: b.tls.Clone(), MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: time.Minute}
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, b.method, b.url, bytes.NewReader(b.body))
				if err != nil {
					b.c.add("error", err.Error())
					return
				}
				req.Header.Set("Content-Type", b.contentType)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					b.c.add("error", err.Error())
					pause(ctx, redialPause)
					continue
				}
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<20))
				resp.Body.Close()
				b.c.add("answered "+strconv.Itoa(resp.StatusCode), "")
				b.sent.Add(1)
			}
		}()
	}
}

// idleConns opens n keep-alive connections that each send one request and
// then stay idle, sending another every refresh (under the server's idle
// timeout) so that the server has no timeout to close them by. A
// connection the server closes is opened again after a second. They come
// from their own address (from, on loopback), as a Pod's would: not the
// API server's.
type idleConns struct {
	addr    string
	from    net.IP
	n       int
	refresh time.Duration
	request func(ctx context.Context) (*http.Request, error)
	tls     *tls.Config

	c     *tally
	held  atomic.Int64 // idle connections held now
	first atomic.Int64 // attackers whose first request was answered
	tried atomic.Int64 // attackers whose first connection was answered or ended
	wg    sync.WaitGroup
}

func (a *idleConns) describe() string {
	return fmt.Sprintf("%d keep-alive connections, each sending one request and then idle (a request every %s)", a.n, a.refresh)
}

func (a *idleConns) counts() *tally { return a.c }

// inPlace: every attacker has tried once. Past the server's connection
// limit the ones it refuses keep trying, as a hoarder would.
func (a *idleConns) inPlace() error {
	if n := a.tried.Load(); n < int64(a.n) {
		return fmt.Errorf("%d of %d connections tried (%d answered their first request, %d held)", n, a.n, a.first.Load(), a.held.Load())
	}
	return nil
}

func (a *idleConns) wait() { a.wg.Wait() }

func (a *idleConns) start(ctx context.Context) {
	a.c = newTally()
	for range a.n {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			first, tried := true, false
			for ctx.Err() == nil {
				err := a.hold(ctx, &first, &tried)
				a.try(&tried)
				if ctx.Err() != nil {
					return
				}
				a.c.add("connection ended", errText(err))
				pause(ctx, redialPause)
			}
		}()
	}
}

// try counts the attacker of tried as having tried, once.
func (a *idleConns) try(tried *bool) {
	if !*tried {
		*tried = true
		a.tried.Add(1)
	}
}

func (a *idleConns) hold(ctx context.Context, first, tried *bool) error {
	cfg := a.tls.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: a.from}}}
	nc, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return err
	}
	c := nc.(*tls.Conn)
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	br := bufio.NewReader(c)
	if err := a.roundTrip(ctx, c, br); err != nil {
		return err
	}
	if *first {
		*first = false
		a.first.Add(1)
	}
	a.try(tried)
	a.held.Add(1)
	defer a.held.Add(-1)
	for {
		if err := c.SetReadDeadline(time.Now().Add(a.refresh)); err != nil {
			return err
		}
		_, err := br.ReadByte()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			if err == nil {
				err = errors.New("server sent bytes on an idle connection")
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				a.c.add("closed by the server", "")
			}
			return err
		}
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
		if err := a.roundTrip(ctx, c, br); err != nil {
			return err
		}
		a.c.add("refresh", "")
	}
}

func (a *idleConns) roundTrip(ctx context.Context, c net.Conn, br *bufio.Reader) error {
	req, err := a.request(ctx)
	if err != nil {
		return err
	}
	if err := req.Write(c); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	a.c.add("answered "+strconv.Itoa(resp.StatusCode), "")
	if resp.Close {
		return errors.New("server asked to close the connection")
	}
	return nil
}

// snapshot copies the counts.
func (c *tally) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
