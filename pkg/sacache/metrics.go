package sacache

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the cache does. A nil *Metrics counts nothing.
type Metrics struct {
	misses         prometheus.Counter
	young          prometheus.Counter
	lookups        prometheus.Counter
	lookupFailures prometheus.Counter
	cached         prometheus.Gauge
}

// NewMetrics creates the cache's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_webhook_service_account_cache_misses_total",
			Help: "Service account lookups the watch cache could not answer.",
		}),
		young: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_webhook_service_account_young_checks_total",
			Help: "Cached service accounts, created moments ago and not yet annotated, checked live.",
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_webhook_service_account_live_lookups_total",
			Help: "Live GETs of service accounts sent to the API server.",
		}),
		lookupFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_webhook_service_account_live_lookup_failures_total",
			Help: "Live GETs of service accounts that failed (the pod was denied).",
		}),
		cached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_webhook_service_accounts_cached",
			Help: "Service accounts held in the watch cache.",
		}),
	}
	reg.MustRegister(m.misses, m.young, m.lookups, m.lookupFailures, m.cached)
	return m
}

func (m *Metrics) incMiss() {
	if m != nil {
		m.misses.Inc()
	}
}

func (m *Metrics) incYoung() {
	if m != nil {
		m.young.Inc()
	}
}

func (m *Metrics) incLookup() {
	if m != nil {
		m.lookups.Inc()
	}
}

func (m *Metrics) incLookupFailure() {
	if m != nil {
		m.lookupFailures.Inc()
	}
}

func (m *Metrics) addCached(n int) {
	if m != nil {
		m.cached.Add(float64(n))
	}
}
