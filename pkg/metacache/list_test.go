package metacache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// pages serves objs as an API server pages a list: Limit objects a page,
// the offset of the next one as the continue token. It records the
// options of every call.
type pages struct {
	objs  []metav1.PartialObjectMetadata
	calls []metav1.ListOptions
	fail  error // returned by the second page, if set
	// collections counts calls of collect, at the page they came after.
	collections []int
}

func (p *pages) collect() { p.collections = append(p.collections, len(p.calls)) }

func (p *pages) list(_ context.Context, o metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	p.calls = append(p.calls, o)
	if p.fail != nil && o.Continue != "" {
		return nil, p.fail
	}
	start := 0
	if o.Continue != "" {
		var err error
		if start, err = strconv.Atoi(o.Continue); err != nil {
			return nil, err
		}
	}
	end := min(start+int(o.Limit), len(p.objs))
	if o.Limit == 0 {
		end = len(p.objs)
	}
	l := &metav1.PartialObjectMetadataList{Items: p.objs[start:end]}
	l.ResourceVersion = "42"
	if end < len(p.objs) {
		l.Continue = strconv.Itoa(end)
	}
	return l, nil
}

// replaced is what a store holds after the reflector's Replace with the
// snapshot listCompacted returns.
func replaced(t *testing.T, p *pages) (contents, *Store) {
	t.Helper()
	got, err := listCompacted(context.Background(), keepPrefixed, p.list, metav1.ListOptions{ResourceVersion: "0", Limit: 500}, p.collect)
	if err != nil {
		t.Fatal(err)
	}
	l := got.(*snapshotList)
	if l.ResourceVersion != "42" {
		t.Errorf("list resource version %q, want the last page's, 42", l.ResourceVersion)
	}
	s := NewStore(keepPrefixed, nil)
	items := make([]any, len(l.Items))
	for i, it := range l.Items {
		items[i] = it
	}
	if err := s.Replace(items, l.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	return dump(s), s
}

func TestListCompactedPagesAndStoresAll(t *testing.T) {
	p := &pages{}
	want := contents{}
	for ns := range 3 {
		for i := range 1200 {
			var a map[string]string
			switch i % 3 {
			case 0:
				a = roleA
			case 1:
				a = map[string]string{prefix + "role-arn": fmt.Sprintf("arn:aws:iam::111122223333:role/r%d", i)}
			}
			name := fmt.Sprintf("sa-%05d", i)
			p.objs = append(p.objs, *object(fmt.Sprintf("ns-%d", ns), name, a))
			want[fmt.Sprintf("ns-%d/%s", ns, name)] = a
		}
	}
	got, s := replaced(t, p)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if s.Len() != len(want) {
		t.Errorf("Len %d, want %d", s.Len(), len(want))
	}
	if n := (len(p.objs) + listPageSize - 1) / listPageSize; len(p.calls) != n {
		t.Errorf("%d pages asked for, want %d", len(p.calls), n)
	}
	for i, o := range p.calls {
		if o.Limit != listPageSize || o.ResourceVersion != "" || o.ResourceVersionMatch != "" {
			t.Errorf("page %d asked with %+v, want limit %d and a consistent read", i, o, listPageSize)
		}
	}
	// Equal sets are shared: roleA once, and one per distinct role (the
	// same in every namespace).
	if got, want := len(s.sets), 1+1200/3; got != want {
		t.Errorf("%d annotation sets, want %d", got, want)
	}
	a1, _, _ := s.Lookup("ns-0", "sa-00000")
	a2, _, _ := s.Lookup("ns-2", "sa-00003")
	if fmt.Sprintf("%p", a1) != fmt.Sprintf("%p", a2) {
		t.Error("equal annotation sets are not shared")
	}
}

// Names out of order (an API server need not list sorted) and a name
// listed twice: stored sorted, the last listed kept, and the dropped
// duplicate's annotation set released.
func TestListCompactedSortsAndDeduplicates(t *testing.T) {
	p := &pages{objs: []metav1.PartialObjectMetadata{
		*object("ns", "c", roleA),
		*object("ns", "a", nil),
		*object("other", "x", roleA),
		*object("ns", "b", roleB),
		*object("ns", "a", roleB),
		*object("ns", "d", map[string]string{prefix + "role-arn": "dropped"}),
		*object("ns", "d", nil),
	}}
	got, s := replaced(t, p)
	want := contents{"ns/a": roleB, "ns/b": roleB, "ns/c": roleA, "ns/d": nil, "other/x": roleA}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if s.Len() != 5 {
		t.Errorf("Len %d, want 5", s.Len())
	}
	if len(s.sets) != 2 {
		t.Errorf("%d annotation sets held, want 2 (the duplicate's released)", len(s.sets))
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, _, ok := s.Lookup("ns", name); !ok {
			t.Errorf("ns/%s not found", name)
		}
	}
	// The table is usable for changes afterwards.
	if err := s.Delete(object("ns", "b", nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(object("ns", "aa", roleA)); err != nil {
		t.Fatal(err)
	}
	want = contents{"ns/a": roleB, "ns/aa": roleA, "ns/c": roleA, "ns/d": nil, "other/x": roleA}
	if diff := cmp.Diff(want, dump(s)); diff != "" {
		t.Errorf("after changes (-want +got):\n%s", diff)
	}
}

func TestListCompactedFailsWithItsPage(t *testing.T) {
	boom := errors.New("page two failed")
	p := &pages{fail: boom}
	for i := range listPageSize + 1 {
		p.objs = append(p.objs, *object("ns", fmt.Sprintf("sa-%04d", i), nil))
	}
	if _, err := listCompacted(context.Background(), keepPrefixed, p.list, metav1.ListOptions{}, nil); !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
}

// The reflector behind a Cache lists page by page (not streamed), stores
// the snapshot with one Replace, then applies watch events.
func TestReflectorListsPagesIntoTheStore(t *testing.T) {
	p := &pages{}
	for i := range 2*listPageSize + 3 {
		p.objs = append(p.objs, *object("ns", fmt.Sprintf("sa-%04d", i), roleA))
	}
	w := watch.NewFakeWithChanSize(10, false)
	watched := make(chan metav1.ListOptions, 1)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return listCompacted(ctx, keepPrefixed, p.list, o, nil)
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			select {
			case watched <- o:
				return w, nil
			default:
				return nil, errors.New("watched twice")
			}
		},
	}
	s := NewStore(keepPrefixed, nil)
	r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, pagedLists{}), &metav1.PartialObjectMetadata{}, s, cache.ReflectorOptions{Name: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.RunWithContext(ctx)
	select {
	case o := <-watched:
		if o.SendInitialEvents != nil && *o.SendInitialEvents {
			t.Errorf("the reflector streamed (%+v); it should have listed", o)
		}
		if o.ResourceVersion != "42" {
			t.Errorf("watch from %q, want the list's version 42", o.ResourceVersion)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reflector did not watch")
	}
	waitFor(t, s.HasSynced)
	if s.Len() != len(p.objs) {
		t.Fatalf("Len %d after the list, want %d", s.Len(), len(p.objs))
	}
	if len(p.calls) != 3 {
		t.Errorf("%d pages, want 3", len(p.calls))
	}
	w.Add(object("ns", "new", roleB))
	w.Delete(object("ns", "sa-0000", nil))
	waitFor(t, func() bool {
		_, _, gone := s.Lookup("ns", "sa-0000")
		a, _, ok := s.Lookup("ns", "new")
		return ok && !gone && cmp.Equal(a, roleB)
	})
}

// With collect set, garbage is collected after every collectEvery listed
// objects, between pages.
func TestListCompactedCollectsBetweenPages(t *testing.T) {
	p := &pages{}
	for i := range 2*collectEvery + listPageSize {
		p.objs = append(p.objs, *object("ns", fmt.Sprintf("sa-%06d", i), nil))
	}
	if _, s := replaced(t, p); s.Len() != len(p.objs) {
		t.Fatalf("Len %d, want %d", s.Len(), len(p.objs))
	}
	every := collectEvery / listPageSize
	if want := []int{every, 2 * every}; !cmp.Equal(p.collections, want) {
		t.Errorf("collections after pages %v, want %v", p.collections, want)
	}
}
