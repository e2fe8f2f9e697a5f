package discovery

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the discovery server's Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	requests        *prometheus.CounterVec
	keys            prometheus.Gauge
	lastSuccess     prometheus.Gauge
	refreshFailures prometheus.Counter
	stale           prometheus.Gauge
}

// NewMetrics creates the discovery metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_webhook_discovery_requests_total",
			Help: "Discovery requests by path (a served path, or \"other\") and HTTP status code.",
		}, []string{"path", "code"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_webhook_discovery_keys",
			Help: "Keys in the JWKS being served; 0 until the first key set is loaded.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_webhook_discovery_last_refresh_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the keys from their source.",
		}),
		refreshFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_webhook_discovery_refresh_failures_total",
			Help: "Loads of the keys from their source that failed; the last good documents stay served.",
		}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_webhook_discovery_stale",
			Help: "1 when the served documents are older than the staleness bound (or none exist yet), else 0.",
		}),
	}
	m.requests = register(reg, m.requests)
	m.keys = register(reg, m.keys)
	m.lastSuccess = register(reg, m.lastSuccess)
	m.refreshFailures = register(reg, m.refreshFailures)
	m.stale = register(reg, m.stale)
	m.stale.Set(1)
	return m
}

// register registers c, or returns the collector already registered under
// its name, so a process that builds its server twice (tests, a restart of
// the command in one process) shares one set of series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register discovery metrics: %v", err))
	}
	return c
}

func (m *Metrics) request(path string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
}

func (m *Metrics) refreshed(keys int, unixSeconds float64) {
	if m == nil {
		return
	}
	m.keys.Set(float64(keys))
	m.lastSuccess.Set(unixSeconds)
	m.stale.Set(0)
}

func (m *Metrics) failed(stale bool) {
	if m == nil {
		return
	}
	m.refreshFailures.Inc()
	if stale {
		m.stale.Set(1)
	}
}
