package sacache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

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

var _ metacache.Observer = (*Metrics)(nil)

// Miss counts a lookup the watch cache could not answer.
func (m *Metrics) Miss() {
	if m != nil {
		m.misses.Inc()
	}
}

// Young counts a young, unannotated ServiceAccount checked live.
func (m *Metrics) Young() {
	if m != nil {
		m.young.Inc()
	}
}

// Lookup counts a live GET.
func (m *Metrics) Lookup() {
	if m != nil {
		m.lookups.Inc()
	}
}

// LookupFailure counts a failed live GET.
func (m *Metrics) LookupFailure() {
	if m != nil {
		m.lookupFailures.Inc()
	}
}

// Cached sets the number of ServiceAccounts held.
func (m *Metrics) Cached(n int) {
	if m != nil {
		m.cached.Set(float64(n))
	}
}
