// Package fakemeta is the metadata API server the cache tests run against:
// client-go's fake metadata client, with live GETs counted (and held or
// failed on request), and a wait for a cache's first sync.
package fakemeta

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
)

// NewClient returns a fake metadata client holding objs.
func NewClient(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

// CountGets counts the live GETs of resource. When gate is not nil each
// GET waits for it; when fail is not nil each GET fails with it.
func CountGets(client *metadatafake.FakeMetadataClient, resource string, gate <-chan struct{}, fail error) *atomic.Int64 {
	var n atomic.Int64
	client.PrependReactor("get", resource, func(clienttesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		if gate != nil {
			<-gate
		}
		if fail != nil {
			return true, nil, fail
		}
		return false, nil, nil
	})
	return &n
}

// Cache is what Start needs of a cache.
type Cache interface {
	Start(ctx context.Context) error
	HasSynced() bool
}

// Start runs c until the test ends and waits, at most 10 s, for its first
// sync.
func Start(t *testing.T, c Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !c.HasSynced() {
		if time.Now().After(deadline) {
			t.Fatal("cache did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
