package serving

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the limits of a Server did, by server name, so an
// operator sees when they bite: requests refused for the body budget,
// connections the connection policy made go, and deadlines moved past a
// pause of the process. One Metrics serves every Server of a process; a
// nil *Metrics counts nothing.
type Metrics struct {
	budgetRefusals *prometheus.CounterVec
	evictions      *prometheus.CounterVec
	refusedConns   *prometheus.CounterVec
	extensions     *prometheus.CounterVec
	handshakeWaits *prometheus.CounterVec
}

// How the connection policy made a connection go (the "how" label of
// irsa_webhook_server_connections_evicted_total).
const (
	evictGoAway          = "goaway"           // HTTP/2: GOAWAY, streams in flight finish
	evictConnectionClose = "connection_close" // HTTP/1.1: the response under way says so
	evictClosedIdle      = "closed_idle"      // HTTP/1.1, idle with nothing arriving: closed
	evictClosedUnused    = "closed_unused"    // opened, then nothing asked on it: closed
)

// NewMetrics creates the serving metrics and registers them with reg, or
// returns those already registered there (serve and its discovery
// listener, or two runs of a command in one process, share them).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "irsa_webhook_server_" + name, Help: help}, append([]string{"server"}, labels...))
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				if c, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
					return c
				}
			}
			panic(err)
		}
		return c
	}
	return &Metrics{
		budgetRefusals: vec("budget_refusals_total",
			"Requests whose body did not fit in the memory budget of request bodies within the wait, by server: answered 503 with Retry-After."),
		evictions: vec("connections_evicted_total",
			"Connections the connection policy made go to keep room for new ones, by server and how: goaway (HTTP/2), connection_close (on the response under way), closed_idle, closed_unused (nothing asked since it opened).",
			"how"),
		refusedConns: vec("connections_refused_total",
			"New connections closed at once because twice the connection limit were open and none could be made to go, by server."),
		extensions: vec("deadline_extensions_total",
			"Deadlines (connection reads and writes, request bodies, the budget wait) moved by a pause of the process that fell inside them, by server."),
		handshakeWaits: vec("handshakes_waited_total",
			"TLS handshakes that waited for a slot because the most allowed were computing at once, by server."),
	}
}

// serverMetrics are the counters of one server.
type serverMetrics struct {
	budgetRefusals prometheus.Counter
	evictions      map[string]prometheus.Counter
	refusedConns   prometheus.Counter
	extensions     prometheus.Counter
	handshakeWaits prometheus.Counter
}

// forServer returns the counters of server name; nil for a nil m.
func (m *Metrics) forServer(name string) *serverMetrics {
	if m == nil {
		return nil
	}
	sm := &serverMetrics{
		budgetRefusals: m.budgetRefusals.WithLabelValues(name),
		evictions:      map[string]prometheus.Counter{},
		refusedConns:   m.refusedConns.WithLabelValues(name),
		extensions:     m.extensions.WithLabelValues(name),
		handshakeWaits: m.handshakeWaits.WithLabelValues(name),
	}
	for _, how := range []string{evictGoAway, evictConnectionClose, evictClosedIdle, evictClosedUnused} {
		sm.evictions[how] = m.evictions.WithLabelValues(name, how)
	}
	return sm
}

func (m *serverMetrics) budgetRefused() {
	if m != nil {
		m.budgetRefusals.Inc()
	}
}

func (m *serverMetrics) evicted(how string) {
	if m != nil {
		m.evictions[how].Inc()
	}
}

func (m *serverMetrics) connRefused() {
	if m != nil {
		m.refusedConns.Inc()
	}
}

func (m *serverMetrics) extended() {
	if m != nil {
		m.extensions.Inc()
	}
}

func (m *serverMetrics) handshakeWaited() {
	if m != nil {
		m.handshakeWaits.Inc()
	}
}

// metricsOf finds the counters of the server whose connection ctx is a
// request of; nil outside a Server.
func metricsOf(ctx context.Context) *serverMetrics {
	if c, ok := ctx.Value(connKey{}).(*conn); ok && c != nil {
		return c.table.metrics
	}
	return nil
}
