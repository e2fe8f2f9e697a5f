package sacache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

// Metrics counts what the cache does. A nil *Metrics counts nothing.
type Metrics = metacache.Metrics

// NewMetrics creates the cache's metrics and registers them with reg:
// irsa_webhook_service_account_cache_misses_total,
// _young_checks_total, _live_lookups_total, _live_lookup_failures_total
// and irsa_webhook_service_accounts_cached.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return metacache.NewMetrics(reg, "service_account", "service_accounts", "service account", true)
}
