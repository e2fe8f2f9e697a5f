package svidhelper

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Metrics are the helper's Prometheus metrics.
type Metrics struct {
	fetches *prometheus.CounterVec

	mu     sync.Mutex
	expiry time.Time
}

// NewMetrics registers the helper's metrics with reg. The remaining-lifetime
// gauge is computed with clk at each scrape.
func NewMetrics(reg prometheus.Registerer, clk clock.PassiveClock) *Metrics {
	m := &Metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_svid_helper_fetches_total",
			Help: "JWT-SVID fetches from the Workload API, by result (success, error).",
		}, []string{"result"}),
	}
	remaining := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "irsa_svid_helper_token_remaining_seconds",
		Help: "Seconds until the token in the file expires; 0 before the first token or after expiry.",
	}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.expiry.IsZero() {
			return 0
		}
		return max(0, m.expiry.Sub(clk.Now()).Seconds())
	})
	reg.MustRegister(m.fetches, remaining)
	m.fetches.WithLabelValues("success")
	m.fetches.WithLabelValues("error")
	return m
}

func (m *Metrics) fetched(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.fetches.WithLabelValues("error").Inc()
		return
	}
	m.fetches.WithLabelValues("success").Inc()
}

func (m *Metrics) written(expiry time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.expiry = expiry
	m.mu.Unlock()
}
