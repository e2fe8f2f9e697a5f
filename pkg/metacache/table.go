package metacache

import (
	"sort"
	"strings"
)

// table holds the records of one namespace, about 30 bytes per object
// (its name's bytes, an offset, a record) instead of the ~100 a Go map
// with one string per name takes.
//
// Most names sit in a sorted base: all names in one string, their end
// offsets and their records, searched by bisection. Records in the base
// are updated in place and deleted by a tombstone; names that are not in
// the base go to a small map, folded into a new base once it (with the
// tombstones) outgrows an eighth of the base. Not safe for concurrent
// writes; the Store locks.
type table struct {
	names string   // base names, sorted and concatenated
	ends  []uint32 // ends[i] is where base name i ends in names
	recs  []record // recs[i] is base name i's record
	dead  int      // tombstones in recs
	added map[string]record
	live  int
}

// tombstone marks a deleted record in a table's base.
var tombstone = &annotationSet{}

// newTable returns a table of sorted, distinct names and their records.
func newTable(sorted []string, recs []record) *table {
	size := 0
	for _, n := range sorted {
		size += len(n)
	}
	var b strings.Builder
	b.Grow(size)
	ends := make([]uint32, len(sorted))
	for i, n := range sorted {
		b.WriteString(n)
		ends[i] = uint32(b.Len())
	}
	return &table{names: b.String(), ends: ends, recs: recs, live: len(recs)}
}

// find returns the base index of name, or -1.
func (t *table) find(name string) int {
	i := sort.Search(len(t.ends), func(i int) bool { return t.name(i) >= name })
	if i < len(t.ends) && t.name(i) == name {
		return i
	}
	return -1
}

func (t *table) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.names[start:t.ends[i]]
}

func (t *table) get(name string) (record, bool) {
	if i := t.find(name); i >= 0 {
		r := t.recs[i]
		return r, r.set != tombstone
	}
	r, ok := t.added[name]
	return r, ok
}

// put stores r under name and returns the record it replaced, if any.
func (t *table) put(name string, r record) (old record, existed bool) {
	if i := t.find(name); i >= 0 {
		old, existed = t.recs[i], t.recs[i].set != tombstone
		t.recs[i] = r
		if !existed {
			t.dead--
			t.live++
		}
		return old, existed
	}
	if old, existed = t.added[name]; !existed {
		if t.added == nil {
			t.added = map[string]record{}
		}
		t.live++
		// A copy, so the name does not keep a decoded object's memory.
		name = strings.Clone(name)
	}
	t.added[name] = r
	t.compactIfDue()
	return old, existed
}

// remove deletes name and returns its record, if it was held.
func (t *table) remove(name string) (record, bool) {
	if i := t.find(name); i >= 0 {
		old := t.recs[i]
		if old.set == tombstone {
			return record{}, false
		}
		t.recs[i] = record{set: tombstone}
		t.dead++
		t.live--
		t.compactIfDue()
		return old, true
	}
	old, ok := t.added[name]
	if ok {
		delete(t.added, name)
		t.live--
	}
	return old, ok
}

func (t *table) compactIfDue() {
	if len(t.added)+t.dead > len(t.recs)/8+32 {
		t.compact()
	}
}

// compact folds the added names into the base and drops the tombstones.
func (t *table) compact() {
	added := make([]string, 0, len(t.added))
	for n := range t.added {
		added = append(added, n)
	}
	sort.Strings(added)
	names := make([]string, 0, t.live)
	recs := make([]record, 0, t.live)
	for i, j := 0, 0; i < len(t.recs) || j < len(added); {
		switch {
		case i < len(t.recs) && t.recs[i].set == tombstone:
			i++
		case j == len(added) || i < len(t.recs) && t.name(i) < added[j]:
			names = append(names, t.name(i))
			recs = append(recs, t.recs[i])
			i++
		default:
			names = append(names, added[j])
			recs = append(recs, t.added[added[j]])
			j++
		}
	}
	*t = *newTable(names, recs)
}
