package sacache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// Prefix selects the annotations kept: those whose key starts with
	// Prefix + "/".
	Prefix string
	// LookupTimeout bounds one live GET. Default 2s.
	LookupTimeout time.Duration
	// MaxConcurrentLookups bounds live GETs in flight for distinct keys.
	// Default 32.
	MaxConcurrentLookups int
	// FreshFor is how long a live answer is used before the informer's copy
	// is trusted again. Default 5s.
	FreshFor time.Duration
	// YoungFor: a ServiceAccount created less than this long ago that shows
	// no annotation under the prefix is checked live, since its annotation may
	// have been added moments ago and not yet reached the watch. Default 30s.
	YoungFor time.Duration
	// Metrics receives counts; nil counts nothing.
	Metrics *Metrics
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Entry is what the cache knows of one ServiceAccount.
type Entry struct {
	// Found is false when the ServiceAccount does not exist.
	Found bool
	// Annotations under the prefix; nil when there are none.
	Annotations map[string]string
}

// Cache is a ServiceAccount annotation cache with a live fallback.
type Cache struct {
	client   metadata.Interface
	informer cache.SharedIndexInformer
	opts     Options
	flights  singleflight.Group
	// waiting counts callers waiting on a live lookup.
	waiting atomic.Int64
	slots   chan struct{}

	mu   sync.Mutex
	live map[string]liveEntry
}

type liveEntry struct {
	entry   Entry
	expires time.Time
}

// New returns a cache that watches ServiceAccounts through client. Run
// starts it.
func New(client metadata.Interface, opts Options) *Cache {
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 2 * time.Second
	}
	if opts.MaxConcurrentLookups <= 0 {
		opts.MaxConcurrentLookups = 32
	}
	if opts.FreshFor <= 0 {
		opts.FreshFor = 5 * time.Second
	}
	if opts.YoungFor <= 0 {
		opts.YoungFor = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{
		client: client,
		opts:   opts,
		slots:  make(chan struct{}, opts.MaxConcurrentLookups),
		live:   map[string]liveEntry{},
	}
	c.informer = metadatainformer.NewFilteredMetadataInformer(client, serviceAccounts, metav1.NamespaceAll, 0,
		cache.Indexers{}, nil).Informer()
	// SetTransform only fails once the informer has started.
	_ = c.informer.SetTransform(c.trim)
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.opts.Metrics.addCached(1) },
		DeleteFunc: func(any) { c.opts.Metrics.addCached(-1) },
	})
	return c
}

// Start runs the informer until ctx ends. It fits controller-runtime's
// manager.Runnable.
func (c *Cache) Start(ctx context.Context) error {
	c.informer.Run(ctx.Done())
	return nil
}

// HasSynced reports whether the initial list has been loaded.
func (c *Cache) HasSynced() bool { return c.informer.HasSynced() }

// Len is the number of ServiceAccounts held.
func (c *Cache) Len() int { return len(c.informer.GetStore().ListKeys()) }

// Get returns what is known of ServiceAccount namespace/name. An error means
// the answer is unknown: the cache had nothing trustworthy and the API server
// did not answer.
func (c *Cache) Get(ctx context.Context, namespace, name string) (Entry, error) {
	key := namespace + "/" + name
	if e, ok := c.fresh(key); ok {
		return e, nil
	}
	obj, exists, err := c.informer.GetStore().GetByKey(key)
	if err == nil && exists {
		m := obj.(*metav1.PartialObjectMetadata)
		young := c.opts.Now().Sub(m.CreationTimestamp.Time) < c.opts.YoungFor
		if len(m.Annotations) > 0 || !young {
			return Entry{Found: true, Annotations: m.Annotations}, nil
		}
		c.opts.Metrics.incYoung()
	} else {
		c.opts.Metrics.incMiss()
	}
	return c.lookup(ctx, namespace, name)
}

func (c *Cache) fresh(key string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	le, ok := c.live[key]
	if !ok {
		return Entry{}, false
	}
	if c.opts.Now().After(le.expires) {
		delete(c.live, key)
		return Entry{}, false
	}
	return le.entry, true
}

// lookup GETs the ServiceAccount live. Concurrent callers for one key share
// one request; its time bound is the cache's, not any one caller's, so a
// caller that gives up does not fail the others.
func (c *Cache) lookup(ctx context.Context, namespace, name string) (Entry, error) {
	key := namespace + "/" + name
	ch := c.flights.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.Background(), c.opts.LookupTimeout)
		defer cancel()
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-lctx.Done():
			return nil, fmt.Errorf("too many service account lookups in flight: %w", lctx.Err())
		}
		c.opts.Metrics.incLookup()
		m, err := c.client.Resource(serviceAccounts).Namespace(namespace).Get(lctx, name, metav1.GetOptions{})
		var e Entry
		switch {
		case apierrors.IsNotFound(err):
			e = Entry{Found: false}
		case err != nil:
			c.opts.Metrics.incLookupFailure()
			return nil, err
		default:
			e = Entry{Found: true, Annotations: c.keep(m.Annotations)}
		}
		c.mu.Lock()
		c.live[key] = liveEntry{entry: e, expires: c.opts.Now().Add(c.opts.FreshFor)}
		c.mu.Unlock()
		return e, nil
	})
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			return Entry{}, fmt.Errorf("get service account %s: %w", key, r.Err)
		}
		return r.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("get service account %s: %w", key, ctx.Err())
	}
}

// trim keeps what Get needs of a ServiceAccount and drops the rest before
// the informer stores it.
func (c *Cache) trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name:              o.Name,
			Namespace:         o.Namespace,
			ResourceVersion:   o.ResourceVersion,
			CreationTimestamp: o.CreationTimestamp,
			Annotations:       c.keep(o.Annotations),
		}}, nil
	case cache.DeletedFinalStateUnknown:
		return o, nil
	}
	return nil, errors.New("sacache: unexpected object type")
}

func (c *Cache) keep(annotations map[string]string) map[string]string {
	var kept map[string]string
	for k, v := range annotations {
		if strings.HasPrefix(k, c.opts.Prefix+"/") {
			if kept == nil {
				kept = make(map[string]string, 2)
			}
			kept[k] = v
		}
	}
	return kept
}
