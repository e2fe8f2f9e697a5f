package metacache

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
)

var (
	serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	namespaces      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// defaultYoungFor is how long a ServiceAccount without the annotations is
// checked live after its creation, unless opts.YoungFor says otherwise.
const defaultYoungFor = 30 * time.Second

// NewServiceAccounts returns a cache of every ServiceAccount that keeps
// the annotations whose key starts with one of prefixes + "/" (the
// --annotation-prefix, and the project's own, which it does not move). It
// sets opts' Resource, Kind, Namespaced and Keep; YoungFor defaults to
// 30s, since an annotation is often added moments after its ServiceAccount
// is created. Start runs it; Get(ctx, namespace, name) reads it.
func NewServiceAccounts(client metadata.Interface, prefixes []string, opts Options) *Cache {
	if opts.YoungFor <= 0 {
		opts.YoungFor = defaultYoungFor
	}
	opts.Resource, opts.Kind, opts.Namespaced = serviceAccounts, "service account", true
	under := make([]string, len(prefixes))
	for i, p := range prefixes {
		under[i] = p + "/"
	}
	opts.Keep = keepUnder(under)
	return New(client, opts)
}

// NewNamespaces returns a cache of every Namespace that keeps the
// annotations named in keys and drops every other. It sets opts' Resource,
// Kind, Namespaced and Keep. Start runs it; Get(ctx, "", name) reads it.
func NewNamespaces(client metadata.Interface, keys []string, opts Options) *Cache {
	opts.Resource, opts.Kind, opts.Namespaced = namespaces, "namespace", false
	opts.Keep = keepOnly(append([]string(nil), keys...))
	return New(client, opts)
}

// NewServiceAccountMetrics registers the metrics of the ServiceAccount
// cache with reg (see NewMetrics):
// irsa_webhook_service_account_cache_misses_total, _young_checks_total,
// _live_lookups_total, _live_lookup_failures_total, _lookup_waits_total,
// _not_found_hits_total and irsa_webhook_service_accounts_cached.
func NewServiceAccountMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetrics(reg, "service_account", "service_accounts", "service account", true)
}

// NewNamespaceMetrics registers the metrics of the Namespace cache with reg:
// irsa_webhook_namespace_cache_misses_total, _live_lookups_total,
// _live_lookup_failures_total, _lookup_waits_total, _not_found_hits_total
// and irsa_webhook_namespaces_cached.
func NewNamespaceMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetrics(reg, "namespace", "namespaces", "namespace", false)
}

// keepUnder keeps the annotations whose key starts with one of prefixes.
func keepUnder(prefixes []string) KeepFunc {
	return func(annotations map[string]string) map[string]string {
		var kept map[string]string
		for k, v := range annotations {
			if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
				if kept == nil {
					kept = make(map[string]string, 2)
				}
				kept[k] = v
			}
		}
		return kept
	}
}

// keepOnly keeps the annotations named in keys.
func keepOnly(keys []string) KeepFunc {
	return func(annotations map[string]string) map[string]string {
		var kept map[string]string
		for _, k := range keys {
			if v, ok := annotations[k]; ok {
				if kept == nil {
					kept = make(map[string]string, len(keys))
				}
				kept[k] = v
			}
		}
		return kept
	}
}
