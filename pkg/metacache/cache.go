package metacache

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
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
	// LookupTimeout bounds one live lookup, its wait for a slot and a
	// token included. Default 2s.
	LookupTimeout time.Duration
	// MaxConcurrentLookups bounds live GETs in flight for distinct keys.
	// Default 32.
	MaxConcurrentLookups int
	// LookupRate bounds live GETs per second, sustained; LookupBurst is
	// how many may go at once after a quiet spell. Defaults 50 and 100.
	// Misses and young checks are bounded apart, each by all three.
	LookupRate  float64
	LookupBurst int
	// FreshFor is how long a live answer is used before the watched copy is
	// trusted again. Default 5s.
	FreshFor time.Duration
	// NotFoundFor is how long a live "not found" is remembered, unless the
	// watch shows the object sooner. Default 5s.
	NotFoundFor time.Duration
	// MaxRemembered bounds the live answers remembered, found and not found
	// each; the oldest is forgotten first. Default 4096.
	MaxRemembered int
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
	// CollectWhileListing: collect garbage every few pages of a full list
	// (collectEvery objects). A list's decoded pages are garbage as soon as
	// they are compacted, and made so fast that the heap otherwise grows
	// to GOGC percent above the live memory (five times it at GOGC=400)
	// before a collection: the process's peak. A collection costs a few
	// milliseconds with the cache's few MB live. Set it with
	// ReturnMemoryAfterSync.
	CollectWhileListing bool
	// Observer is told what the cache does; nil tells nobody.
	Observer Observer
	// Now is the clock of the remembered answers and of YoungFor; tests
	// replace it. The rate limit runs on the real clock.
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
	// LookupFailure: a live GET failed, or could not be sent in time.
	LookupFailure()
	// Wait: a live lookup found no free slot or token and waited.
	Wait()
	// NotFoundHit: a miss was answered by a remembered "not found".
	NotFoundHit()
	// Cached: the store now holds n objects.
	Cached(n int)
}

type noObserver struct{}

func (noObserver) Miss()          {}
func (noObserver) Young()         {}
func (noObserver) Lookup()        {}
func (noObserver) LookupFailure() {}
func (noObserver) Wait()          {}
func (noObserver) NotFoundHit()   {}
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
	// Misses and young checks have a pool each (slots, token bucket), so a
	// flood of made-up names cannot starve the checks of real new objects.
	misses, young pool
	// changes tells waiting lookups that the watch stored their object.
	changes *changes

	// notFoundWait bounds how long a remembered "not found" waits for the
	// watch to show the object before it is the answer.
	notFoundWait time.Duration

	mu       sync.Mutex
	found    *memo // live answers of objects that exist
	notFound *memo // live answers of objects that do not
}

type name struct{ namespace, name string }

// pool bounds one kind of live lookup: in flight, and in rate.
type pool struct {
	slots  chan struct{}
	tokens *rate.Limiter
}

func newPool(opts Options) pool {
	return pool{
		slots:  make(chan struct{}, opts.MaxConcurrentLookups),
		tokens: rate.NewLimiter(rate.Limit(opts.LookupRate), opts.LookupBurst),
	}
}

// New returns a cache of opts.Resource through client. Start runs it.
func New(client metadata.Interface, opts Options) *Cache {
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 2 * time.Second
	}
	if opts.MaxConcurrentLookups <= 0 {
		opts.MaxConcurrentLookups = 32
	}
	if opts.LookupRate <= 0 {
		opts.LookupRate = 50
	}
	if opts.LookupBurst <= 0 {
		opts.LookupBurst = 100
	}
	if opts.FreshFor <= 0 {
		opts.FreshFor = 5 * time.Second
	}
	if opts.NotFoundFor <= 0 {
		opts.NotFoundFor = 5 * time.Second
	}
	if opts.MaxRemembered <= 0 {
		opts.MaxRemembered = 4096
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	c := &Cache{
		client:   client,
		opts:     opts,
		misses:   newPool(opts),
		young:    newPool(opts),
		changes:  newChanges(),
		found:    newMemo(opts.MaxRemembered),
		notFound: newMemo(opts.MaxRemembered),
		// Far longer than the watch takes to deliver an object, and short
		// enough for most callers' deadlines.
		notFoundWait: time.Second,
	}
	c.store = NewStore(opts.Keep, opts.Observer.Cached)
	c.store.stored = c.changes.stored
	resource := client.Resource(opts.Resource)
	var list cache.ListWatch
	var page pageFunc
	if opts.Namespaced {
		page = func(ctx context.Context, o metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
			return resource.Namespace(metav1.NamespaceAll).List(ctx, o)
		}
		list.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return resource.Namespace(metav1.NamespaceAll).Watch(ctx, o)
		}
	} else {
		page = func(ctx context.Context, o metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
			return resource.List(ctx, o)
		}
		list.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return resource.Watch(ctx, o)
		}
	}
	var collect func()
	if opts.CollectWhileListing {
		collect = runtime.GC
	}
	list.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
		return listCompacted(ctx, opts.Keep, page, o, collect)
	}
	// A reflector straight into the compact store: no informer queue or
	// event handlers holding objects on the way. Its full lists are paged
	// and compacted as each page arrives (listCompacted), rather than
	// streamed (WatchList): the reflector holds a streamed list whole, in
	// a store of its own keyed by name, until its last object, which took
	// the process to 140 MiB while 100,000 ServiceAccounts streamed in.
	c.reflector = cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(&list, pagedLists{}),
		&metav1.PartialObjectMetadata{}, c.store, cache.ReflectorOptions{
			Name:            opts.Resource.Resource,
			TypeDescription: "metadata of " + opts.Resource.Resource,
		})
	return c
}

// pagedLists tells the reflector to list rather than stream its full
// lists (see New).
type pagedLists struct{}

func (pagedLists) IsWatchListSemanticsUnSupported() bool { return true }

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

// ReadyCheck is a readiness check (a controller-runtime healthz.Checker):
// it fails until HasSynced.
func (c *Cache) ReadyCheck(*http.Request) error {
	if !c.HasSynced() {
		return fmt.Errorf("%s cache has not synced", c.opts.Kind)
	}
	return nil
}

// Len is the number of objects held.
func (c *Cache) Len() int { return c.store.Len() }

// watchState is what the watched copy says of an object.
type watchState int

const (
	// watchAnswers: the store holds the object, and its copy is trusted.
	watchAnswers watchState = iota
	// watchYoung: the store holds the object, young and without kept
	// annotations, which may be on their way.
	watchYoung
	// watchMisses: the store does not hold the object.
	watchMisses
)

func (c *Cache) watched(key name) (Entry, watchState) {
	annotations, created, ok := c.store.Lookup(key.namespace, key.name)
	if !ok {
		return Entry{}, watchMisses
	}
	if annotations == nil && c.opts.YoungFor > 0 && c.opts.Now().Sub(time.Unix(created, 0)) < c.opts.YoungFor {
		return Entry{}, watchYoung
	}
	return Entry{Found: true, Annotations: annotations}, watchAnswers
}

// Get returns what is known of object namespace/name (namespace is "" for
// a cluster-scoped resource). An error means the answer is unknown: the
// cache had nothing trustworthy and the API server did not answer.
func (c *Cache) Get(ctx context.Context, namespace, objName string) (Entry, error) {
	key := name{namespace, objName}
	if e, ok := c.remembered(c.found, key); ok {
		return e, nil
	}
	e, state := c.watched(key)
	switch state {
	case watchAnswers:
		return e, nil
	case watchYoung:
		c.opts.Observer.Young()
	case watchMisses:
		c.opts.Observer.Miss()
		// The watch overrides a remembered "not found": it is asked first,
		// and once more after a short wait for it (see the package doc).
		if _, ok := c.remembered(c.notFound, key); ok {
			c.opts.Observer.NotFoundHit()
			if e, state = c.waitForWatch(ctx, key); state != watchYoung {
				return e, nil
			}
			// Created meanwhile, and too young to trust: checked live.
		}
	}
	if state == watchYoung {
		return c.lookup(ctx, key, &c.young)
	}
	return c.lookup(ctx, key, &c.misses)
}

// waitForWatch answers a remembered "not found": what the watch shows of
// the object, if it shows it within c.notFoundWait (or ctx), else not
// found.
func (c *Cache) waitForWatch(ctx context.Context, key name) (Entry, watchState) {
	changed, done := c.changes.wait(key)
	defer func() { done() }()
	timer := time.NewTimer(c.notFoundWait)
	defer timer.Stop()
	for {
		if e, state := c.watched(key); state != watchMisses {
			return e, state
		}
		select {
		case <-changed:
			done()
			changed, done = c.changes.wait(key)
		case <-timer.C:
			return Entry{Found: false}, watchMisses
		case <-ctx.Done():
			return Entry{Found: false}, watchMisses
		}
	}
}

func (c *Cache) remembered(m *memo, key name) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.get(key, c.opts.Now())
}

func (c *Cache) remember(key name, e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Found {
		c.found.put(key, e, c.opts.Now().Add(c.opts.FreshFor))
	} else {
		c.notFound.put(key, e, c.opts.Now().Add(c.opts.NotFoundFor))
	}
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
func (c *Cache) lookup(ctx context.Context, key name, p *pool) (Entry, error) {
	id := key.String()
	ch := c.flights.DoChan(id, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.Background(), c.opts.LookupTimeout)
		defer cancel()
		release, e, answered, err := c.admit(lctx, key, p)
		if err != nil {
			c.opts.Observer.LookupFailure()
			return nil, err
		}
		if answered {
			return e, nil
		}
		defer release()
		c.opts.Observer.Lookup()
		var m *metav1.PartialObjectMetadata
		if c.opts.Namespaced {
			m, err = c.client.Resource(c.opts.Resource).Namespace(key.namespace).Get(lctx, key.name, metav1.GetOptions{})
		} else {
			m, err = c.client.Resource(c.opts.Resource).Get(lctx, key.name, metav1.GetOptions{})
		}
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

// admit waits, until ctx ends, for a slot of p and then a token. If the watch answers for key meanwhile, answered is true and
// e is its answer: no GET is needed. Otherwise release gives the slot back
// once the GET is done.
func (c *Cache) admit(ctx context.Context, key name, p *pool) (release func(), e Entry, answered bool, err error) {
	changed, done := c.changes.wait(key)
	defer func() { done() }()
	// watchAnswered re-registers first, so no change is missed between
	// the look and the next wait.
	watchAnswered := func() bool {
		done()
		changed, done = c.changes.wait(key)
		var state watchState
		e, state = c.watched(key)
		return state == watchAnswers
	}
	if watchAnswered() {
		return nil, e, true, nil
	}
	waited := false
	for got := false; !got; {
		select {
		case p.slots <- struct{}{}:
			got = true
		default:
			if !waited {
				waited = true
				c.opts.Observer.Wait()
			}
			select {
			case p.slots <- struct{}{}:
				got = true
			case <-changed:
				if watchAnswered() {
					return nil, e, true, nil
				}
			case <-ctx.Done():
				return nil, Entry{}, false, fmt.Errorf("too many %s lookups in flight: %w", c.opts.Kind, ctx.Err())
			}
		}
	}
	release = func() { <-p.slots }
	r := p.tokens.Reserve()
	delay := r.Delay()
	if delay == 0 {
		return release, Entry{}, false, nil
	}
	if !waited {
		c.opts.Observer.Wait()
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		// The token would come too late: give it and the slot back at
		// once to lookups that can use them, and wait for the watch only.
		r.Cancel()
		release()
		for {
			select {
			case <-changed:
				if watchAnswered() {
					return nil, e, true, nil
				}
			case <-ctx.Done():
				return nil, Entry{}, false, fmt.Errorf("%s lookups over their rate limit: %w", c.opts.Kind, ctx.Err())
			}
		}
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return release, Entry{}, false, nil
		case <-changed:
			if watchAnswered() {
				r.Cancel()
				release()
				return nil, e, true, nil
			}
		case <-ctx.Done():
			r.Cancel()
			release()
			return nil, Entry{}, false, fmt.Errorf("%s lookups over their rate limit: %w", c.opts.Kind, ctx.Err())
		}
	}
}

// Waiting is the number of callers waiting on a live lookup; tests use it
// to know a burst has gathered.
func (c *Cache) Waiting() int64 { return c.waiting.Load() }
