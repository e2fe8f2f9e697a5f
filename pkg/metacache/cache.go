package metacache

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// Options configure a Cache. Zero values take the defaults.
type Options struct {
	// Resource is what is watched, in all namespaces when it is namespaced.
	Resource schema.GroupVersionResource
	// Kind names the resource in errors, e.g. "service account".
	Kind string
	// Namespaced is true for a namespaced resource.
	Namespaced bool
	// Keep chooses the annotations kept of each object. Required.
	Keep KeepFunc
	// LookupTimeout bounds one live GET. Default 2s.
	LookupTimeout time.Duration
	// MaxConcurrentLookups bounds live GETs in flight for distinct keys.
	// Default 32.
	MaxConcurrentLookups int
	// FreshFor is how long a live answer is used before the watched copy is
	// trusted again. Default 5s.
	FreshFor time.Duration
	// YoungFor: an object created less than this long ago that shows no
	// kept annotation is checked live, since its annotation may have been
	// added moments ago and not yet reached the watch. 0 checks none.
	YoungFor time.Duration
	// ReturnMemoryAfterSync: once the initial list is stored, collect its
	// garbage and return the freed memory to the operating system
	// (debug.FreeOSMemory) before HasSynced reports true, rather than
	// leaving it to the runtime's background scavenger, which takes minutes.
	// At scale the initial list makes most of a process's garbage: without
	// it, resident memory stays near its peak during the sync. Set it in
	// the one cache per process with the most objects.
	ReturnMemoryAfterSync bool
	// Observer is told what the cache does; nil tells nobody.
	Observer Observer
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Observer is told what a Cache does, for metrics.
type Observer interface {
	// Miss: the watched copy could not answer.
	Miss()
	// Young: a young object without kept annotations is checked live.
	Young()
	// Lookup: a live GET is sent.
	Lookup()
	// LookupFailure: a live GET failed.
	LookupFailure()
	// Cached: the store now holds n objects.
	Cached(n int)
}

type noObserver struct{}

func (noObserver) Miss()          {}
func (noObserver) Young()         {}
func (noObserver) Lookup()        {}
func (noObserver) LookupFailure() {}
func (noObserver) Cached(int)     {}

// Entry is what the cache knows of one object.
type Entry struct {
	// Found is false when the object does not exist.
	Found bool
	// Annotations are the kept annotations; nil when there are none. The
	// map is shared: callers must not modify it.
	Annotations map[string]string
}

// Cache answers which kept annotations an object carries: from a
// metadata-only watch into a Store, and for what the watch has not shown
// yet, from a live GET.
type Cache struct {
	client    metadata.Interface
	opts      Options
	store     *Store
	reflector *cache.Reflector

	// settled is set once the initial list is stored and, with
	// ReturnMemoryAfterSync, its garbage returned.
	settled atomic.Bool

	flights singleflight.Group
	// waiting counts callers waiting on a live lookup.
	waiting atomic.Int64
	slots   chan struct{}

	mu   sync.Mutex
	live map[name]liveEntry
}

type name struct{ namespace, name string }

type liveEntry struct {
	entry   Entry
	expires time.Time
}

// maxLive is the number of remembered live answers above which expired
// ones are swept when another is added.
const maxLive = 1024

// New returns a cache of opts.Resource through client. Start runs it.
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	c := &Cache{
		client: client,
		opts:   opts,
		slots:  make(chan struct{}, opts.MaxConcurrentLookups),
		live:   map[name]liveEntry{},
	}
	c.store = NewStore(opts.Keep, opts.Observer.Cached)
	resource := client.Resource(opts.Resource)
	var list cache.ListWatch
	if opts.Namespaced {
		list.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return resource.Namespace(metav1.NamespaceAll).List(ctx, o)
		}
		list.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return resource.Namespace(metav1.NamespaceAll).Watch(ctx, o)
		}
	} else {
		list.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return resource.List(ctx, o)
		}
		list.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return resource.Watch(ctx, o)
		}
	}
	// A reflector straight into the compact store: no informer queue or
	// event handlers holding objects on the way. The wrapper tells the
	// reflector whether client can stream the initial list (WatchList).
	c.reflector = cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(&list, client),
		&metav1.PartialObjectMetadata{}, c.store, cache.ReflectorOptions{
			Name:            opts.Resource.Resource,
			TypeDescription: "metadata of " + opts.Resource.Resource,
		})
	return c
}

// Start runs the watch until ctx ends. It fits controller-runtime's
// manager.Runnable.
func (c *Cache) Start(ctx context.Context) error {
	go func() {
		select {
		case <-c.store.Synced():
			if c.opts.ReturnMemoryAfterSync {
				debug.FreeOSMemory()
			}
			c.settled.Store(true)
		case <-ctx.Done():
		}
	}()
	c.reflector.RunWithContext(ctx)
	return nil
}

// NeedLeaderElection is false: every replica needs its own cache.
func (c *Cache) NeedLeaderElection() bool { return false }

// HasSynced reports whether the initial list has been stored (and, with
// ReturnMemoryAfterSync, its garbage returned).
func (c *Cache) HasSynced() bool { return c.settled.Load() }

// Len is the number of objects held.
func (c *Cache) Len() int { return c.store.Len() }

// Get returns what is known of object namespace/name (namespace is "" for
// a cluster-scoped resource). An error means the answer is unknown: the
// cache had nothing trustworthy and the API server did not answer.
func (c *Cache) Get(ctx context.Context, namespace, objName string) (Entry, error) {
	key := name{namespace, objName}
	if e, ok := c.fresh(key); ok {
		return e, nil
	}
	annotations, created, ok := c.store.Lookup(namespace, objName)
	if ok {
		young := c.opts.YoungFor > 0 && c.opts.Now().Sub(time.Unix(created, 0)) < c.opts.YoungFor
		if annotations != nil || !young {
			return Entry{Found: true, Annotations: annotations}, nil
		}
		c.opts.Observer.Young()
	} else {
		c.opts.Observer.Miss()
	}
	return c.lookup(ctx, key)
}

func (c *Cache) fresh(key name) (Entry, bool) {
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

func (c *Cache) remember(key name, e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if len(c.live) >= maxLive {
		for k, le := range c.live {
			if now.After(le.expires) {
				delete(c.live, k)
			}
		}
	}
	c.live[key] = liveEntry{entry: e, expires: now.Add(c.opts.FreshFor)}
}

func (k name) String() string {
	if k.namespace == "" {
		return k.name
	}
	return k.namespace + "/" + k.name
}

// lookup GETs the object live. Concurrent callers for one key share one
// request; its time bound is the cache's, not any one caller's, so a
// caller that gives up does not fail the others.
func (c *Cache) lookup(ctx context.Context, key name) (Entry, error) {
	id := key.String()
	ch := c.flights.DoChan(id, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.Background(), c.opts.LookupTimeout)
		defer cancel()
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-lctx.Done():
			return nil, fmt.Errorf("too many %s lookups in flight: %w", c.opts.Kind, lctx.Err())
		}
		c.opts.Observer.Lookup()
		var m *metav1.PartialObjectMetadata
		var err error
		if c.opts.Namespaced {
			m, err = c.client.Resource(c.opts.Resource).Namespace(key.namespace).Get(lctx, key.name, metav1.GetOptions{})
		} else {
			m, err = c.client.Resource(c.opts.Resource).Get(lctx, key.name, metav1.GetOptions{})
		}
		var e Entry
		switch {
		case apierrors.IsNotFound(err):
			e = Entry{Found: false}
		case err != nil:
			c.opts.Observer.LookupFailure()
			return nil, err
		default:
			e = Entry{Found: true, Annotations: c.opts.Keep(m.Annotations)}
		}
		c.remember(key, e)
		return e, nil
	})
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			return Entry{}, fmt.Errorf("get %s %s: %w", c.opts.Kind, id, r.Err)
		}
		return r.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("get %s %s: %w", c.opts.Kind, id, ctx.Err())
	}
}

// Waiting is the number of callers waiting on a live lookup; tests use it
// to know a burst has gathered.
func (c *Cache) Waiting() int64 { return c.waiting.Load() }

// Store is the cache's store.
func (c *Cache) Store() *Store { return c.store }
