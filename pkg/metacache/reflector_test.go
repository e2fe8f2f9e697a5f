package metacache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// The store behind client-go's reflector when the initial list is
// streamed (WatchList): the reflector compacts objects with the store's
// transformer as they arrive, stores them with one Replace at the
// end-of-initial-events bookmark, then applies watch events.
func TestStoreBehindStreamingReflector(t *testing.T) {
	w := watch.NewFakeWithChanSize(10, false)
	streamed := make(chan metav1.ListOptions, 1)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			t.Error("the reflector listed; the initial list should have been streamed")
			return &metav1.PartialObjectMetadataList{}, nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			select {
			case streamed <- o:
				return w, nil
			default:
				return nil, fmt.Errorf("watched twice")
			}
		},
	}
	var g gauge
	s := NewStore(keepPrefixed, g.set)
	r := cache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, s, cache.ReflectorOptions{Name: "test"})

	w.Add(object("ns", "a", roleA))
	w.Add(object("ns", "b", map[string]string{"other.io/x": "y"}))
	w.Add(object("other", "c", roleA))
	end := object("", "", map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	end.ResourceVersion = "10"
	w.Action(watch.Bookmark, end)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.RunWithContext(ctx)
	select {
	case o := <-streamed:
		if o.SendInitialEvents == nil || !*o.SendInitialEvents {
			t.Errorf("watch options %+v do not ask for the initial events", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reflector did not watch")
	}
	waitFor(t, s.HasSynced)
	if diff := cmp.Diff(contents{"ns/a": roleA, "ns/b": nil, "other/c": roleA}, dump(s)); diff != "" {
		t.Errorf("after the initial events (-want +got):\n%s", diff)
	}

	w.Modify(object("ns", "b", roleB))
	w.Delete(object("other", "c", nil))
	want := contents{"ns/a": roleA, "ns/b": roleB}
	waitFor(t, func() bool { return cmp.Equal(want, dump(s)) })
	if g.n != 2 {
		t.Errorf("count reported %d, want 2", g.n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
