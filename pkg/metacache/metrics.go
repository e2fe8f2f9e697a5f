package metacache

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what a Cache does; it is an Observer. A nil *Metrics
// counts nothing.
type Metrics struct {
	misses         prometheus.Counter
	young          prometheus.Counter // nil when the cache checks no young objects
	lookups        prometheus.Counter
	lookupFailures prometheus.Counter
	waits          prometheus.Counter
	notFoundHits   prometheus.Counter
	cached         prometheus.Gauge
}

var _ Observer = (*Metrics)(nil)

// NewMetrics creates a cache's metrics and registers them with reg:
// irsa_webhook_<object>_cache_misses_total, _live_lookups_total,
// _live_lookup_failures_total, _lookup_waits_total and
// _not_found_hits_total, irsa_webhook_<objects>_cached and, with
// young, irsa_webhook_<object>_young_checks_total. object and objects are
// snake case ("service_account", "service_accounts"); kind names the
// object in the help texts ("service account").
func NewMetrics(reg prometheus.Registerer, object, objects, kind string, young bool) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "irsa_webhook_" + name, Help: help})
	}
	m := &Metrics{
		misses:         counter(object+"_cache_misses_total", "Lookups of a "+kind+" the watch cache could not answer."),
		lookups:        counter(object+"_live_lookups_total", "Live GETs of a "+kind+" sent to the API server."),
		lookupFailures: counter(object+"_live_lookup_failures_total", "Live GETs of a "+kind+" that failed or could not be sent in time (the pod was denied)."),
		waits:          counter(object+"_lookup_waits_total", "Live lookups of a "+kind+" that waited for a free slot or for the rate limit."),
		notFoundHits:   counter(object+"_not_found_hits_total", "Cache misses of a "+kind+" answered by a recently remembered not found, without a GET."),
		cached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_webhook_" + objects + "_cached",
			Help: "Objects of kind " + kind + " held in the watch cache.",
		}),
	}
	collectors := []prometheus.Collector{m.misses, m.lookups, m.lookupFailures, m.waits, m.notFoundHits, m.cached}
	if young {
		m.young = counter(object+"_young_checks_total", "Cached objects of kind "+kind+", created moments ago and not yet annotated, checked live.")
		collectors = append(collectors, m.young)
	}
	reg.MustRegister(collectors...)
	return m
}

// Miss counts a lookup the watch cache could not answer.
func (m *Metrics) Miss() {
	if m != nil {
		m.misses.Inc()
	}
}

// Young counts a young object without kept annotations checked live.
func (m *Metrics) Young() {
	if m != nil && m.young != nil {
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

// Wait counts a live lookup that waited for a slot or a token.
func (m *Metrics) Wait() {
	if m != nil {
		m.waits.Inc()
	}
}

// NotFoundHit counts a miss answered by a remembered not found.
func (m *Metrics) NotFoundHit() {
	if m != nil {
		m.notFoundHits.Inc()
	}
}

// Cached sets the number of objects held.
func (m *Metrics) Cached(n int) {
	if m != nil {
		m.cached.Set(float64(n))
	}
}
