package nscache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var namespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// Keys are the annotation keys kept; every other annotation is dropped.
	Keys []string
	// LookupTimeout bounds one live GET. Default 2s.
	LookupTimeout time.Duration
}

// Entry is what the cache knows of one Namespace.
type Entry struct {
	// Found is false when the Namespace does not exist.
	Found bool
	// Annotations holds the kept annotations the Namespace has; nil when it
	// has none.
	Annotations map[string]string
}

// Cache is a Namespace annotation cache with a live fallback.
type Cache struct {
	client   metadata.Interface
	informer cache.SharedIndexInformer
	opts     Options
	flights  singleflight.Group
}

// New returns a cache that watches Namespaces through client. Start runs
// it.
func New(client metadata.Interface, opts Options) *Cache {
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 2 * time.Second
	}
	c := &Cache{client: client, opts: opts}
	c.informer = metadatainformer.NewFilteredMetadataInformer(client, namespaces, metav1.NamespaceAll, 0,
		cache.Indexers{}, nil).Informer()
	// SetTransform only fails once the informer has started.
	_ = c.informer.SetTransform(c.trim)
	return c
}

// Start runs the informer until ctx ends. It fits controller-runtime's
// manager.Runnable.
func (c *Cache) Start(ctx context.Context) error {
	c.informer.Run(ctx.Done())
	return nil
}

// NeedLeaderElection is false: every replica needs its own cache.
func (c *Cache) NeedLeaderElection() bool { return false }

// HasSynced reports whether the initial list has been loaded.
func (c *Cache) HasSynced() bool { return c.informer.HasSynced() }

// Get returns what is known of Namespace name. An error means the answer is
// unknown: the informer has not seen it and the API server did not answer.
func (c *Cache) Get(ctx context.Context, name string) (Entry, error) {
	obj, exists, err := c.informer.GetStore().GetByKey(name)
	if err == nil && exists {
		return Entry{Found: true, Annotations: obj.(*metav1.PartialObjectMetadata).Annotations}, nil
	}
	ch := c.flights.DoChan(name, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.Background(), c.opts.LookupTimeout)
		defer cancel()
		m, err := c.client.Resource(namespaces).Get(lctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return Entry{}, nil
		case err != nil:
			return nil, err
		}
		return Entry{Found: true, Annotations: c.keep(m.Annotations)}, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Entry{}, fmt.Errorf("get namespace %s: %w", name, r.Err)
		}
		return r.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("get namespace %s: %w", name, ctx.Err())
	}
}

// trim keeps what Get needs of a Namespace and drops the rest before the
// informer stores it.
func (c *Cache) trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name:            o.Name,
			ResourceVersion: o.ResourceVersion,
			Annotations:     c.keep(o.Annotations),
		}}, nil
	case cache.DeletedFinalStateUnknown:
		return o, nil
	}
	return nil, errors.New("nscache: unexpected object type")
}

func (c *Cache) keep(annotations map[string]string) map[string]string {
	var kept map[string]string
	for _, k := range c.opts.Keys {
		if v, ok := annotations[k]; ok {
			if kept == nil {
				kept = make(map[string]string, len(c.opts.Keys))
			}
			kept[k] = v
		}
	}
	return kept
}
