package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outcome is what became of one admission request.
type outcome string

const (
	outcomeMutated outcome = "mutated"
	// outcomeSkipped: a Pod that gets nothing (not opted in, opted out, or
	// an invalid annotation, with a warning).
	outcomeSkipped outcome = "skipped"
	// outcomeDenied: the ServiceAccount, or the namespace's role policy,
	// could not be looked up.
	outcomeDenied outcome = "denied"
	// outcomeRefused: the namespace's role policy does not allow the role
	// and --role-policy-action is deny.
	outcomeRefused outcome = "refused"
	// outcomeError: a bad request or our own failure.
	outcomeError outcome = "error"
	// outcomeIgnored: not a Pod CREATE (another resource, an update, a
	// subresource). Counted, not logged.
	outcomeIgnored outcome = "ignored"
)

// Metrics are the handler's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics creates the handler's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_webhook_admission_requests_total",
			Help: "Admission requests by outcome: mutated, skipped, denied, refused, error, ignored.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "irsa_webhook_admission_duration_seconds",
			Help:    "Time to decode and decide one admission request, by outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(o outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(string(o)).Inc()
	m.latency.WithLabelValues(string(o)).Observe(d.Seconds())
}
