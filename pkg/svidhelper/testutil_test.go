package svidhelper

import (
	"context"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

func logrIntoContext(ctx context.Context, l logr.Logger) context.Context {
	return logr.NewContext(ctx, l)
}

// collectorFunc is a gauge whose value f computes, for testutil.ToFloat64.
type collectorFunc func() float64

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "value", Help: "value"}, f).Describe(ch)
}

func (f collectorFunc) Collect(ch chan<- prometheus.Metric) {
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "value", Help: "value"}, f).Collect(ch)
}
