package metacache

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Object is the compact form of one watched object: all the store keeps
// of it, and what the reflector holds between the first watch events and
// the initial Replace.
type Object struct {
	Namespace string // "" for cluster-scoped resources
	Name      string
	// Created is the creation time in Unix seconds (the API server stores
	// it with one-second precision).
	Created int64
	// kept is the kept annotations in the canonical encoding of encodeSet;
	// "" when there are none.
	kept string
}

// record is one object in the store, besides its name.
type record struct {
	created int64
	set     *annotationSet // nil when no annotation is kept
}

// annotationSet is one distinct set of kept annotations, shared by every
// object that carries exactly that set (typically many ServiceAccounts
// share a role and audience).
type annotationSet struct {
	annotations map[string]string // never modified once made
	key         string            // canonical encoding, key in Store.sets
	refs        int               // records pointing here
}

// Store is a cache.ReflectorStore that keeps, per object, its namespace,
// name, creation time and the annotations chosen by a keep function, and
// nothing else. Distinct annotation sets are stored once and shared.
//
// Replace takes either the snapshot a Cache's paged list built (see
// listCompacted) or a list of objects, compacted here. It implements
// cache.TransformingStore, so a reflector streaming its list (WatchList)
// compacts each object as it arrives; a Cache's reflector lists in pages
// instead, which holds less.
type Store struct {
	keep     KeepFunc
	onChange func(n int) // called with the number of objects after each change
	// stored, if not nil, is told of each object added or updated (all is
	// true when the whole contents were replaced), while the store is
	// locked; the Cache wakes lookups waiting on the watch with it.
	stored func(namespace, name string, all bool)

	mu      sync.RWMutex
	objects map[string]*table         // by namespace
	sets    map[string]*annotationSet // canonical encoding -> set
	n       int
	synced  chan struct{} // closed by the first Replace
}

// KeepFunc returns the annotations to keep of an object's annotations, or
// nil when none are kept. It must not modify its argument.
type KeepFunc func(annotations map[string]string) map[string]string

var (
	_ cache.ReflectorStore    = (*Store)(nil)
	_ cache.TransformingStore = (*Store)(nil)
)

// NewStore returns an empty store that keeps what keep returns. onChange,
// if not nil, is called with the number of objects held after every
// change, while the store is locked (keep it cheap).
func NewStore(keep KeepFunc, onChange func(n int)) *Store {
	if onChange == nil {
		onChange = func(int) {}
	}
	return &Store{
		keep:     keep,
		onChange: onChange,
		objects:  map[string]*table{},
		sets:     map[string]*annotationSet{},
		synced:   make(chan struct{}),
	}
}

// Lookup returns the kept annotations (nil when none; shared, callers must
// not modify them) and creation time of namespace/name, and whether the
// store holds it. It does not allocate.
func (s *Store) Lookup(namespace, name string) (annotations map[string]string, created int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.objects[namespace]
	if !ok {
		return nil, 0, false
	}
	r, ok := t.get(name)
	if !ok {
		return nil, 0, false
	}
	if r.set != nil {
		annotations = r.set.annotations
	}
	return annotations, r.created, true
}

// Len is the number of objects held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Synced is closed once the first full list has been stored.
func (s *Store) Synced() <-chan struct{} { return s.synced }

// HasSynced reports whether the first full list has been stored.
func (s *Store) HasSynced() bool {
	select {
	case <-s.synced:
		return true
	default:
		return false
	}
}

// Transformer implements cache.TransformingStore: the reflector compacts
// objects with it before holding them.
func (s *Store) Transformer() cache.TransformFunc { return s.transform }

func (s *Store) transform(obj any) (any, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d, nil
	}
	o, err := s.compact(obj)
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// compact returns the compact form of a *metav1.PartialObjectMetadata or
// an *Object.
func (s *Store) compact(obj any) (Object, error) {
	switch o := obj.(type) {
	case *Object:
		return *o, nil
	case *metav1.PartialObjectMetadata:
		return compactMeta(s.keep, o), nil
	}
	return Object{}, fmt.Errorf("unexpected object type %T", obj)
}

// compactMeta is the compact form of m, keeping what keep returns.
func compactMeta(keep KeepFunc, m *metav1.PartialObjectMetadata) Object {
	return Object{
		// Namespaces repeat across objects: one copy of each.
		Namespace: unique.Make(m.Namespace).Value(),
		Name:      m.Name,
		Created:   m.CreationTimestamp.Unix(),
		kept:      encodeSet(keep(m.Annotations)),
	}
}

// Add implements cache.ReflectorStore.
func (s *Store) Add(obj any) error { return s.Update(obj) }

// Update implements cache.ReflectorStore.
func (s *Store) Update(obj any) error {
	o, err := s.compact(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added, err := put(s.objects, s.sets, o)
	s.n += added
	s.onChange(s.n)
	if s.stored != nil {
		s.stored(o.Namespace, o.Name, false)
	}
	return err
}

// Delete implements cache.ReflectorStore.
func (s *Store) Delete(obj any) error {
	var namespace, name string
	switch o := obj.(type) {
	case cache.DeletedFinalStateUnknown:
		var err error
		if namespace, name, err = cache.SplitMetaNamespaceKey(o.Key); err != nil {
			return err
		}
	case *Object:
		namespace, name = o.Namespace, o.Name
	case *metav1.PartialObjectMetadata:
		namespace, name = o.Namespace, o.Name
	default:
		return fmt.Errorf("unexpected object type %T", obj)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.objects[namespace]
	if !ok {
		return nil
	}
	r, ok := t.remove(name)
	if !ok {
		return nil
	}
	release(s.sets, r.set)
	if t.live == 0 {
		delete(s.objects, namespace)
	}
	s.n--
	s.onChange(s.n)
	return nil
}

// Replace implements cache.ReflectorStore: the store holds exactly list
// afterwards. The new contents are built aside and swapped in, so lookups
// are not blocked while a large list is stored.
func (s *Store) Replace(list []any, _ string) error {
	if len(list) == 1 {
		if snap, ok := list[0].(*snapshot); ok {
			s.swap(snap.objects, snap.sets, snap.n)
			return snap.err
		}
	}
	byNamespace := map[string][]Object{}
	var errs []error
	for _, obj := range list {
		o, err := s.compact(obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byNamespace[o.Namespace] = append(byNamespace[o.Namespace], o)
	}
	objects := make(map[string]*table, len(byNamespace))
	sets := map[string]*annotationSet{}
	n := 0
	for ns, list := range byNamespace {
		// Sorted by name; of duplicates (there should be none) the last
		// listed wins.
		sort.SliceStable(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		names := make([]string, 0, len(list))
		recs := make([]record, 0, len(list))
		for i, o := range list {
			if i+1 < len(list) && list[i+1].Name == o.Name {
				continue
			}
			r, err := newRecord(sets, o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			names = append(names, o.Name)
			recs = append(recs, r)
		}
		objects[ns] = newTable(names, recs)
		n += len(recs)
	}
	s.swap(objects, sets, n)
	return errors.Join(errs...)
}

// swap makes objects, sets and n the store's contents.
func (s *Store) swap(objects map[string]*table, sets map[string]*annotationSet, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects, s.sets, s.n = objects, sets, n
	s.onChange(n)
	if s.stored != nil {
		s.stored("", "", true)
	}
	if !s.HasSynced() {
		close(s.synced)
	}
}

// Resync implements cache.ReflectorStore; there is nothing to resync.
func (s *Store) Resync() error { return nil }

// put stores o and returns 1 if it is new, 0 if it replaced a record.
func put(objects map[string]*table, sets map[string]*annotationSet, o Object) (int, error) {
	r, err := newRecord(sets, o)
	if err != nil {
		return 0, err
	}
	t, ok := objects[o.Namespace]
	if !ok {
		t = newTable(nil, nil)
		objects[o.Namespace] = t
	}
	old, existed := t.put(o.Name, r)
	if existed {
		release(sets, old.set)
		return 0, nil
	}
	return 1, nil
}

// newRecord makes o's record, holding a reference to its annotation set.
func newRecord(sets map[string]*annotationSet, o Object) (record, error) {
	r := record{created: o.Created}
	if o.kept != "" {
		var err error
		if r.set, err = acquire(sets, o.kept); err != nil {
			return record{}, fmt.Errorf("store %s/%s: %w", o.Namespace, o.Name, err)
		}
	}
	return r, nil
}

func acquire(sets map[string]*annotationSet, key string) (*annotationSet, error) {
	set, ok := sets[key]
	if !ok {
		annotations, err := decodeSet(key)
		if err != nil {
			return nil, err
		}
		set = &annotationSet{annotations: annotations, key: key}
		sets[key] = set
	}
	set.refs++
	return set, nil
}

func release(sets map[string]*annotationSet, set *annotationSet) {
	if set == nil {
		return
	}
	if set.refs--; set.refs == 0 {
		delete(sets, set.key)
	}
}

// encodeSet encodes annotations as their keys in order, each key and value
// preceded by its length: "<len>:<key><len>:<value>...", so two sets share
// an encoding only if they are equal, whatever bytes the values hold. The
// result is interned: equal sets seen at once share one string.
func encodeSet(annotations map[string]string) string {
	if len(annotations) == 0 {
		return ""
	}
	keys := make([]string, 0, len(annotations))
	size := 0
	for k, v := range annotations {
		keys = append(keys, k)
		size += len(k) + len(v) + 8
	}
	sort.Strings(keys)
	b := make([]byte, 0, size)
	for _, k := range keys {
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(b, ':')
		b = append(b, k...)
		v := annotations[k]
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return unique.Make(string(b)).Value()
}

// decodeSet is the inverse of encodeSet. Keys are interned: the same few
// keys recur in every set.
func decodeSet(enc string) (map[string]string, error) {
	m := map[string]string{}
	for rest := enc; rest != ""; {
		k, r, okKey := next(rest)
		v, r, okValue := next(r)
		if !okKey || !okValue {
			return nil, fmt.Errorf("malformed annotation set encoding %q", enc)
		}
		m[unique.Make(k).Value()] = v
		rest = r
	}
	return m, nil
}

// next splits "<len>:<s>rest" into s and rest.
func next(enc string) (s, rest string, ok bool) {
	i := strings.IndexByte(enc, ':')
	if i < 0 {
		return "", "", false
	}
	n, err := strconv.Atoi(enc[:i])
	if err != nil || n < 0 || n > len(enc)-i-1 {
		return "", "", false
	}
	return enc[i+1 : i+1+n], enc[i+1+n:], true
}
