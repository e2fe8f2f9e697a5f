package metacache

import (
	"context"
	"errors"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// listPageSize is how many objects one page of a full list asks for. Each
// page is compacted into the snapshot before the next is asked for, so
// only one page of decoded objects is alive at a time. Measured at 100,000
// ServiceAccounts on a shared 2-core machine, pages of 250 took the sync to
// 10 s (a round trip each), 500 to 5 s and 1000 to 3 s.
const listPageSize = 1000

// collectEvery is how many listed objects Options.CollectWhileListing lets
// pass between collections: two pages, about 3 MB of decoded objects.
const collectEvery = 2 * listPageSize

// pageFunc lists one page of objects.
type pageFunc func(ctx context.Context, o metav1.ListOptions) (*metav1.PartialObjectMetadataList, error)

// listCompacted lists every object page by page and builds the store's
// contents as the pages arrive. It returns a list of one item, the
// snapshot, which Store.Replace swaps in whole: the reflector holds
// neither the decoded objects nor a list of them.
//
// The list is a consistent read (resourceVersion ""), whatever version
// the reflector asks for: an API server serves a list at version "0" from
// its watch cache in one piece, ignoring the page size, and the most
// recent state is never older than the version asked for.
//
// collect, if not nil, is called after every collectEvery objects.
func listCompacted(ctx context.Context, keep KeepFunc, list pageFunc, o metav1.ListOptions, collect func()) (runtime.Object, error) {
	b := newSnapshotBuilder(keep)
	o.ResourceVersion, o.ResourceVersionMatch, o.Limit, o.Continue = "", "", listPageSize, ""
	since := 0
	for {
		page, err := list(ctx, o)
		if err != nil {
			return nil, err
		}
		for i := range page.Items {
			b.add(&page.Items[i])
		}
		next, rv := page.Continue, page.ResourceVersion
		if since += len(page.Items); collect != nil && since >= collectEvery {
			page = nil
			collect()
			since = 0
		}
		if next == "" {
			return &snapshotList{ListMeta: metav1.ListMeta{ResourceVersion: rv}, Items: []runtime.Object{b.finish()}}, nil
		}
		o.Continue = next
	}
}

// snapshot is the store's contents built from a full list.
type snapshot struct {
	objects map[string]*table
	sets    map[string]*annotationSet
	n       int
	err     error // objects that could not be stored
}

// GetObjectKind implements runtime.Object.
func (*snapshot) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. A snapshot is not modified
// once built (Replace takes it over), so it is its own copy.
func (s *snapshot) DeepCopyObject() runtime.Object { return s }

// snapshotList is what listCompacted returns to the reflector: the list's
// resource version and the snapshot as its only item.
type snapshotList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

// DeepCopyObject implements runtime.Object.
func (l *snapshotList) DeepCopyObject() runtime.Object {
	c := *l
	c.ListMeta = *l.ListMeta.DeepCopy()
	c.Items = slices.Clone(l.Items)
	return &c
}

// snapshotBuilder builds a snapshot from objects in the order the API
// server lists them: by namespace, then name. Each namespace's names are
// appended straight into the packed form a table keeps; a namespace whose
// names did not arrive in order is sorted once at the end.
type snapshotBuilder struct {
	keep KeepFunc
	s    *snapshot
	ns   map[string]*tableBuilder
	errs []error
}

type tableBuilder struct {
	names    []byte
	ends     []uint32
	recs     []record
	unsorted bool
}

func newSnapshotBuilder(keep KeepFunc) *snapshotBuilder {
	return &snapshotBuilder{
		keep: keep,
		s:    &snapshot{objects: map[string]*table{}, sets: map[string]*annotationSet{}},
		ns:   map[string]*tableBuilder{},
	}
}

func (b *snapshotBuilder) add(m *metav1.PartialObjectMetadata) {
	o := compactMeta(b.keep, m)
	r, err := newRecord(b.s.sets, o)
	if err != nil {
		b.errs = append(b.errs, err)
		return
	}
	t, ok := b.ns[o.Namespace]
	if !ok {
		t = &tableBuilder{}
		b.ns[o.Namespace] = t
	}
	if n := len(t.ends); n > 0 && !t.unsorted {
		start := uint32(0)
		if n > 1 {
			start = t.ends[n-2]
		}
		if string(t.names[start:t.ends[n-1]]) >= o.Name {
			t.unsorted = true
		}
	}
	t.names = append(t.names, o.Name...)
	t.ends = append(t.ends, uint32(len(t.names)))
	t.recs = append(t.recs, r)
}

func (b *snapshotBuilder) finish() *snapshot {
	for ns, t := range b.ns {
		var tab *table
		if t.unsorted {
			tab = t.sorted(b.s.sets)
		} else {
			tab = &table{names: string(t.names), ends: slices.Clip(t.ends), recs: slices.Clip(t.recs), live: len(t.recs)}
		}
		b.s.objects[ns] = tab
		b.s.n += tab.live
		delete(b.ns, ns)
	}
	b.s.err = errors.Join(b.errs...)
	return b.s
}

// sorted is t's table for names that arrived out of order: sorted by
// name, of duplicates the last listed kept (its predecessors' references
// to their annotation sets released).
func (t *tableBuilder) sorted(sets map[string]*annotationSet) *table {
	idx := make([]int, len(t.recs))
	for i := range idx {
		idx[i] = i
	}
	name := func(i int) string {
		start := uint32(0)
		if i > 0 {
			start = t.ends[i-1]
		}
		return string(t.names[start:t.ends[i]])
	}
	sort.SliceStable(idx, func(a, b int) bool { return name(idx[a]) < name(idx[b]) })
	names := make([]string, 0, len(idx))
	recs := make([]record, 0, len(idx))
	for k, i := range idx {
		if k+1 < len(idx) && name(idx[k+1]) == name(i) {
			release(sets, t.recs[i].set)
			continue
		}
		names = append(names, name(i))
		recs = append(recs, t.recs[i])
	}
	return newTable(names, recs)
}
