package serving

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// evicted is the count of connections server "test" lost by how.
func evicted(m *Metrics, how string) float64 {
	return testutil.ToFloat64(m.evictions.WithLabelValues("test", how))
}

// Dashboards and alerts use these names and labels: they stay.
func TestServingMetricNamesAreStable(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.evictions != m.evictions {
		t.Error("a second NewMetrics on the same registry made new collectors")
	}
	sm := m.forServer("webhook")
	sm.budgetRefused()
	sm.evicted(evictGoAway)
	sm.connRefused()
	sm.extended()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
		for _, metric := range f.GetMetric() {
			server := ""
			for _, l := range metric.GetLabel() {
				if l.GetName() == "server" {
					server = l.GetValue()
				}
			}
			if server != "webhook" {
				t.Errorf("%s has labels %v, want server=webhook among them", f.GetName(), metric.GetLabel())
			}
		}
	}
	want := []string{
		"irsa_webhook_server_budget_refusals_total",
		"irsa_webhook_server_connections_evicted_total",
		"irsa_webhook_server_connections_refused_total",
		"irsa_webhook_server_deadline_extensions_total",
		"irsa_webhook_server_handshakes_waited_total",
	}
	if !slices.Equal(names, want) {
		t.Errorf("metric names %v, want %v", names, want)
	}
	var nothing *Metrics
	nothing.forServer("x").evicted(evictGoAway) // a nil *Metrics counts nothing, and does not panic
}

// A connection that asks nothing past its grace is closed for a new one,
// and counted as closed_unused.
func TestEvictionOfUnusedConnectionIsCounted(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	l := DefaultLimits()
	l.MaxConnections = 1
	ts := start(t, &Server{Handler: okHandler(), Limits: l, Metrics: m}, false)
	tb := ts.table()
	tb.mu.Lock()
	tb.newGrace = 10 * time.Millisecond
	tb.mu.Unlock()
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	eventually(t, 10*time.Second, "the silent connection past its grace", func() bool {
		c := tb.find(silent.LocalAddr())
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return c != nil && tb.stalled(c, time.Now())
	})
	keepAlive(t, ts)
	closedByServer(t, silent)
	if got := evicted(m, evictClosedUnused); got != 1 {
		t.Errorf("closed_unused = %v, want 1", got)
	}
}

// Past twice MaxConnections, with none that can be made to go, a new
// connection is closed at once and counted.
func TestRefusedConnectionIsCounted(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	l := DefaultLimits()
	l.MaxConnections = 1
	entered, release := make(chan struct{}, 2), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	ts := start(t, &Server{Handler: h, Limits: l, Metrics: m}, false)
	done := make(chan error, 2)
	for range 2 {
		c := ts.client(false)
		go func() {
			resp, err := c.Get(ts.url("/"))
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		<-entered
	}
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool})
	if err == nil {
		c.Close()
		t.Error("a third connection completed its handshake with two busy ones at MaxConnections 1")
	}
	eventually(t, 10*time.Second, "the refusal counted", func() bool {
		return testutil.ToFloat64(m.refusedConns.WithLabelValues("test")) == 1
	})
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("busy request: %v", err)
		}
	}
}

// A read whose deadline passed during a pause of the process is given the
// pause back, and the extension is counted. The pause is the clock's: a
// real one (SIGSTOP) is TestPauseDoesNotCloseConnection's.
func TestDeadlineExtensionIsCounted(t *testing.T) {
	pauses.start()
	m := NewMetrics(prometheus.NewRegistry())
	table := &connTable{metrics: m.forServer("test")}
	server, client := net.Pipe()
	defer client.Close()
	c := &conn{Conn: server, table: table}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// A second of pause is recorded after the deadline was set.
	pauses.paused.Add(int64(time.Second))
	extensions := m.extensions.WithLabelValues("test")
	go func() {
		// Only once the read has timed out and been given the pause back.
		for end := time.Now().Add(10 * time.Second); testutil.ToFloat64(extensions) == 0 && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
		_, _ = client.Write([]byte("x"))
	}()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("read across the pause: %v", err)
	}
	if got := testutil.ToFloat64(extensions); got < 1 {
		t.Errorf("deadline_extensions = %v, want at least 1", got)
	}
}

// The budget's refusals are counted once per request, on the server the
// request came to.
func TestBudgetRefusalIsCounted(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	b := NewBudget(128<<10, 64<<10, 10*time.Millisecond)
	// Hold all of the budget, as requests in flight would.
	if !b.small.TryAcquire(b.reserve) || !b.shared.TryAcquire(b.total-b.reserve) {
		t.Fatal("budget not free")
	}
	defer b.small.Release(b.reserve)
	defer b.shared.Release(b.total - b.reserve)
	reached := false
	h := b.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	c := &conn{table: &connTable{metrics: m.forServer("test")}}
	r, _ := http.NewRequestWithContext(context.WithValue(context.Background(), connKey{}, c), http.MethodPost, "/", bytes.NewReader(make([]byte, 1000)))
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, r)
	if w.code != http.StatusServiceUnavailable || reached {
		t.Errorf("over budget: HTTP %d, handler reached %t; want 503 unread", w.code, reached)
	}
	if got := testutil.ToFloat64(m.budgetRefusals.WithLabelValues("test")); got != 1 {
		t.Errorf("budget_refusals = %v, want 1", got)
	}
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }
