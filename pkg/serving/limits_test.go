package serving

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn opens a raw HTTP/2 connection to ts and returns its framer, after
// the preface and an empty SETTINGS frame.
func h2conn(t *testing.T, ts *testServer) (*tls.Conn, *http2.Framer) {
	t.Helper()
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// The HTTP/2 limits are the ones set, not the library defaults: the
// server announces them in its SETTINGS and its connection window.
func TestHTTP2LimitsApply(t *testing.T) {
	l := DefaultLimits()
	ts := start(t, &Server{Handler: http.NotFoundHandler(), Limits: l}, false)
	_, fr := h2conn(t, ts)
	got := map[http2.SettingID]uint32{}
	var connWindow uint32
	for connWindow == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = f.ForeachSetting(func(s http2.Setting) error { got[s.ID] = s.Val; return nil })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWindow = 65535 + f.Increment // RFC 9113 6.9.2: starts at 65,535
			}
		}
	}
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: uint32(l.MaxConcurrentStreams),
		http2.SettingMaxFrameSize:         uint32(l.MaxReadFrameSize),
		http2.SettingInitialWindowSize:    uint32(l.MaxReceiveBufferPerStream),
		http2.SettingHeaderTableSize:      4 << 10,
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("SETTINGS %s = %d, want %d", id, got[id], v)
		}
	}
	if got[http2.SettingMaxHeaderListSize] == 0 || got[http2.SettingMaxHeaderListSize] > uint32(l.MaxHeaderBytes)+4096 {
		t.Errorf("SETTINGS MAX_HEADER_LIST_SIZE = %d, want about %d", got[http2.SettingMaxHeaderListSize], l.MaxHeaderBytes)
	}
	if connWindow != uint32(l.MaxReceiveBufferPerConnection) {
		t.Errorf("connection window = %d, want %d", connWindow, l.MaxReceiveBufferPerConnection)
	}
	if l.MaxReadFrameSize == 1<<20 || l.MaxReceiveBufferPerConnection == 1<<20 || l.MaxReceiveBufferPerStream == 1<<20 {
		t.Error("a default limit is the library's 1 MiB")
	}
}

// readingHandler reads the body as a handler would (growing its buffer
// as bytes arrive) and counts the handlers that have started.
func readingHandler(started *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r.Body); err != nil {
			if err == ErrBusy || isBusy(err) {
				WriteBusy(w)
				return
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "read %d bytes", buf.Len())
	})
}

func isBusy(err error) bool { return err != nil && err.Error() == ErrBusy.Error() }

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Streams announcing 7 MiB bodies that never arrive hold no memory for
// them: 4 connections of 100 streams announce 2.8 GiB, and the heap grows
// by what 400 waiting handlers take, far below one announced body each.
func TestAnnouncedBodiesDoNotGrowHeap(t *testing.T) {
	var started atomic.Int64
	ts := start(t, &Server{Handler: readingHandler(&started), Budget: NewBudget(32<<20, 7<<20, time.Second)}, false)
	before := heapInUse()
	const conns, streams = 4, 100
	for range conns {
		_, fr := h2conn(t, ts)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for i := range streams {
			hb.Reset()
			for _, h := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", ts.addr}, {":path", "/mutate"},
				{"content-type", "application/json"}, {"content-length", strconv.Itoa(7 << 20)}} {
				_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, 30*time.Second, "every announced stream's handler to start", func() bool { return started.Load() == conns*streams })
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew by %d KiB for %d streams announcing 7 MiB each", grown>>10, conns*streams)
	if grown > 7<<20 {
		t.Errorf("heap grew by %d MiB, more than one announced body", grown>>20)
	}
	// Nor do they hold any of the budget: all of it is free.
	b := ts.Budget
	if !b.shared.TryAcquire(b.total-b.reserve) || !b.small.TryAcquire(b.reserve) {
		t.Fatal("streams that sent no body byte hold part of the budget")
	}
	b.shared.Release(b.total - b.reserve)
	b.small.Release(b.reserve)
}

// Bodies beyond the budget wait briefly, then are answered 503 with
// Retry-After, unread; once room is back, requests are served again.
func TestBodiesBeyondBudgetAreRefused(t *testing.T) {
	const budget = 256 << 10
	entered, release := make(chan struct{}, 64), make(chan struct{})
	var reads atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		b, err := io.ReadAll(r.Body)
		if isBusy(err) {
			WriteBusy(w)
			return
		}
		if r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	b := NewBudget(budget, 64<<10, 100*time.Millisecond)
	m := NewMetrics(prometheus.NewRegistry())
	ts := start(t, &Server{Handler: h, Budget: b, Metrics: m}, false)
	// Each held request holds BodyCost times its body; enough of them
	// fill the reserve and the shared part.
	const held = BodyCost * (64<<10 - 1)
	fill := int(b.reserve/held + (b.total-b.reserve)/held)
	for i, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%t", h2), func(t *testing.T) {
			c := ts.client(h2)
			post := func(size int, hold bool) (*http.Response, error) {
				req, _ := http.NewRequest(http.MethodPost, ts.url("/"), bytes.NewReader(make([]byte, size)))
				if hold {
					req.Header.Set("X-Hold", "1")
				}
				return c.Do(req)
			}
			var wg sync.WaitGroup
			for range fill {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if resp, err := post(64<<10-1, true); err == nil {
						resp.Body.Close()
					}
				}()
				<-entered
			}
			readsBefore := reads.Load()
			resp, err := post(32<<10, false)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("over budget: HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if reads.Load() != readsBefore {
				t.Error("the refused request reached the handler")
			}
			if got := testutil.ToFloat64(m.budgetRefusals.WithLabelValues("test")); got != float64(i+1) {
				t.Errorf("budget_refusals = %v, want %d", got, i+1)
			}
			for range fill {
				release <- struct{}{}
			}
			wg.Wait()
			resp, err = post(32<<10, false)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != strconv.Itoa(32<<10) {
				t.Errorf("after release: HTTP %d %q, want 200 %d", resp.StatusCode, b, 32<<10)
			}
		})
	}
}

// The HTTP/2 write timeout, now kept on the pause clock by writeTimeout,
// still bounds a stream: a handler that outlasts it, and an answer a
// client holds up by announcing a zero flow-control window, each end in
// RST_STREAM, and the handler returns.
func TestHTTP2WriteTimeoutResetsTheStream(t *testing.T) {
	l := DefaultLimits()
	l.WriteTimeout = 300 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	returned := make(chan string, 2)
	ts := start(t, &Server{Limits: l, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/big":
			// Under x/net's 4 KiB buffer: the write returns, and the
			// bytes wait for the flush after the handler.
			_, _ = w.Write(bytes.Repeat([]byte("b"), 2<<10))
		}
		returned <- r.URL.Path
	})}, false)

	for _, tc := range []struct {
		path   string
		window uint32
	}{{"/slow", 65535}, {"/big", 0}} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(c, c)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: tc.window}); err != nil {
				t.Fatal(err)
			}
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "webhook"}, {":path", tc.path}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("no RST_STREAM within 10 s of a %s write timeout: %v", l.WriteTimeout, err)
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						_ = fr.WriteSettingsAck()
					}
				case *http2.DataFrame:
					if f.StreamEnded() {
						t.Fatal("the stream was answered in full")
					}
				case *http2.RSTStreamFrame:
					if f.StreamID != 1 {
						t.Fatalf("RST_STREAM of stream %d", f.StreamID)
					}
					select {
					case p := <-returned:
						if p != tc.path {
							t.Fatalf("handler of %s returned", p)
						}
					case <-time.After(10 * time.Second):
						t.Fatal("the handler did not return after the reset")
					}
					return
				}
			}
		})
	}
}
