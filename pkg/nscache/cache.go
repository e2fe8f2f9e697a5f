package nscache

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
	"github.com/prometheus/client_golang/prometheus"
)

var namespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// Keys are the annotation keys kept; every other annotation is dropped.
	Keys []string
	// LookupTimeout bounds one live GET. Default 2s.
	LookupTimeout time.Duration
	// Metrics receives counts; nil counts nothing.
	Metrics *metacache.Metrics
}

// NewMetrics creates the cache's metrics and registers them with reg:
// irsa_webhook_namespace_cache_misses_total, _live_lookups_total,
// _live_lookup_failures_total and irsa_webhook_namespaces_cached.
func NewMetrics(reg prometheus.Registerer) *metacache.Metrics {
	return metacache.NewMetrics(reg, "namespace", "namespaces", "namespace", false)
}

// Entry is what the cache knows of one Namespace: Found is false when it
// does not exist; Annotations holds the kept annotations it has, nil when
// it has none (shared: callers must not modify them).
type Entry = metacache.Entry

// Cache is a Namespace annotation cache with a live fallback.
type Cache struct {
	*metacache.Cache
}

// New returns a cache that watches Namespaces through client. Start runs
// it.
func New(client metadata.Interface, opts Options) *Cache {
	keys := append([]string(nil), opts.Keys...)
	return &Cache{metacache.New(client, metacache.Options{
		Resource:      namespaces,
		Kind:          "namespace",
		Keep:          func(a map[string]string) map[string]string { return keepKeys(keys, a) },
		LookupTimeout: opts.LookupTimeout,
		Observer:      opts.Metrics,
	})}
}

// Get returns what is known of Namespace name. An error means the answer is
// unknown: the watch has not shown it and the API server did not answer.
func (c *Cache) Get(ctx context.Context, name string) (Entry, error) {
	return c.Cache.Get(ctx, "", name)
}

func keepKeys(keys []string, annotations map[string]string) map[string]string {
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
