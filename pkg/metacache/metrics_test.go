package metacache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsNames: the names are made from the object's kind, and the
// young counter exists only where young objects are checked.
func TestMetricsNames(t *testing.T) {
	for name, tc := range map[string]struct {
		young bool
		want  []string
	}{
		"with young checks": {true, []string{
			"irsa_webhook_thing_cache_misses_total", "irsa_webhook_thing_live_lookup_failures_total",
			"irsa_webhook_thing_live_lookups_total", "irsa_webhook_thing_lookup_waits_total", "irsa_webhook_thing_not_found_hits_total",
			"irsa_webhook_thing_young_checks_total", "irsa_webhook_things_cached"}},
		"without": {false, []string{
			"irsa_webhook_thing_cache_misses_total", "irsa_webhook_thing_live_lookup_failures_total",
			"irsa_webhook_thing_live_lookups_total", "irsa_webhook_thing_lookup_waits_total", "irsa_webhook_thing_not_found_hits_total",
			"irsa_webhook_things_cached"}},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg, "thing", "things", "thing", tc.young)
			m.Miss()
			m.Young()
			m.Lookup()
			m.LookupFailure()
			m.Wait()
			m.NotFoundHit()
			m.Cached(3)
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range families {
				got = append(got, f.GetName())
				v := f.GetMetric()[0]
				if n := v.GetCounter().GetValue() + v.GetGauge().GetValue(); n == 0 {
					t.Errorf("%s is 0 after being counted", f.GetName())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
	var nothing *Metrics
	nothing.Miss() // a nil *Metrics counts nothing, and does not panic
}

// Dashboards use these names: the two caches keep them.
func TestCacheMetricNamesAreStable(t *testing.T) {
	for kind, tc := range map[string]struct {
		register func(prometheus.Registerer) *Metrics
		want     []string
	}{
		"service accounts": {NewServiceAccountMetrics, []string{
			"irsa_webhook_service_account_cache_misses_total", "irsa_webhook_service_account_live_lookup_failures_total",
			"irsa_webhook_service_account_live_lookups_total", "irsa_webhook_service_account_lookup_waits_total",
			"irsa_webhook_service_account_not_found_hits_total", "irsa_webhook_service_account_young_checks_total",
			"irsa_webhook_service_accounts_cached"}},
		"namespaces": {NewNamespaceMetrics, []string{
			"irsa_webhook_namespace_cache_misses_total", "irsa_webhook_namespace_live_lookup_failures_total",
			"irsa_webhook_namespace_live_lookups_total", "irsa_webhook_namespace_lookup_waits_total",
			"irsa_webhook_namespace_not_found_hits_total", "irsa_webhook_namespaces_cached"}},
	} {
		reg := prometheus.NewRegistry()
		m := tc.register(reg)
		m.Miss()
		m.Young()
		m.Cached(1)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range families {
			got = append(got, f.GetName())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s metrics (-want +got):\n%s", kind, diff)
		}
	}
}
