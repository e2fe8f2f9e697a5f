package sacache

import (
	"context"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

var serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// Prefix selects the annotations kept: those whose key starts with
	// Prefix + "/", or with one of AlsoPrefixes + "/" (the project's own
	// keys, which --annotation-prefix does not move).
	Prefix       string
	AlsoPrefixes []string
	// LookupTimeout bounds one live GET. Default 2s.
	LookupTimeout time.Duration
	// MaxConcurrentLookups bounds live GETs in flight for distinct keys.
	// Default 32.
	MaxConcurrentLookups int
	// FreshFor is how long a live answer is used before the watched copy
	// is trusted again. Default 5s.
	FreshFor time.Duration
	// YoungFor: a ServiceAccount created less than this long ago that shows
	// no annotation under the prefix is checked live, since its annotation may
	// have been added moments ago and not yet reached the watch. Default 30s.
	YoungFor time.Duration
	// ReturnMemoryAfterSync returns the garbage of the initial list to the
	// operating system once it is stored, so the process's resident memory
	// drops at once rather than over minutes (see
	// metacache.Options.ReturnMemoryAfterSync). The server sets it.
	ReturnMemoryAfterSync bool
	// Metrics receives counts; nil counts nothing.
	Metrics *Metrics
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Entry is what the cache knows of one ServiceAccount: Found is false when
// it does not exist; Annotations are those under the prefix, nil when
// there are none (shared: callers must not modify them).
type Entry = metacache.Entry

// Cache is a ServiceAccount annotation cache with a live fallback.
type Cache struct {
	*metacache.Cache
}

// New returns a cache that watches ServiceAccounts through client. Start
// runs it.
func New(client metadata.Interface, opts Options) *Cache {
	if opts.YoungFor <= 0 {
		opts.YoungFor = 30 * time.Second
	}
	prefixes := []string{opts.Prefix + "/"}
	for _, p := range opts.AlsoPrefixes {
		prefixes = append(prefixes, p+"/")
	}
	return &Cache{metacache.New(client, metacache.Options{
		Resource:              serviceAccounts,
		Kind:                  "service account",
		Namespaced:            true,
		Keep:                  func(a map[string]string) map[string]string { return keepPrefixed(prefixes, a) },
		LookupTimeout:         opts.LookupTimeout,
		MaxConcurrentLookups:  opts.MaxConcurrentLookups,
		FreshFor:              opts.FreshFor,
		YoungFor:              opts.YoungFor,
		ReturnMemoryAfterSync: opts.ReturnMemoryAfterSync,
		Observer:              opts.Metrics,
		Now:                   opts.Now,
	})}
}

// Get returns what is known of ServiceAccount namespace/name. An error
// means the answer is unknown: the cache had nothing trustworthy and the
// API server did not answer.
func (c *Cache) Get(ctx context.Context, namespace, name string) (Entry, error) {
	return c.Cache.Get(ctx, namespace, name)
}

func keepPrefixed(prefixes []string, annotations map[string]string) map[string]string {
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
