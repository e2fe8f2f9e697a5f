package metacache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

const prefix = "eks.amazonaws.com/"

func keepPrefixed(a map[string]string) map[string]string {
	var kept map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, prefix) {
			if kept == nil {
				kept = map[string]string{}
			}
			kept[k] = v
		}
	}
	return kept
}

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func object(namespace, name string, annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, CreationTimestamp: metav1.NewTime(created),
			ResourceVersion: "7", UID: "0d6c2c4e-1b7a-4c39-9d0e-5f0f6f1e2a3b",
			Annotations: annotations, Labels: map[string]string{"dropped": "yes"},
		},
	}
}

// contents is what a store holds, keyed "namespace/name".
type contents map[string]map[string]string

func dump(s *Store) contents {
	s.mu.RLock()
	defer s.mu.RUnlock()
	got := contents{}
	for ns, t := range s.objects {
		t.each(func(name string, r record) {
			var a map[string]string
			if r.set != nil {
				a = r.set.annotations
			}
			got[ns+"/"+name] = a
		})
	}
	return got
}

// gauge records the count the store reports.
type gauge struct{ n int }

func (g *gauge) set(n int) { g.n = n }

var (
	roleA = map[string]string{prefix + "role-arn": "arn:aws:iam::111122223333:role/a"}
	roleB = map[string]string{prefix + "role-arn": "arn:aws:iam::111122223333:role/b", prefix + "audience": "sts"}
)

func TestStoreChanges(t *testing.T) {
	withOther := func(m map[string]string) map[string]string {
		out := map[string]string{"other.io/x": "y"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for name, tc := range map[string]struct {
		ops  func(s *Store) error
		want contents
	}{
		"add keeps only the kept annotations": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "a", withOther(roleA))), s.Add(object("ns", "plain", map[string]string{"other.io/x": "y"})))
			},
			want: contents{"ns/a": roleA, "ns/plain": nil},
		},
		"update replaces the annotations": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "a", roleA)), s.Update(object("ns", "a", roleB)))
			},
			want: contents{"ns/a": roleB},
		},
		"update removes annotations": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "a", roleA)), s.Update(object("ns", "a", nil)))
			},
			want: contents{"ns/a": nil},
		},
		"delete": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "a", roleA)), s.Add(object("ns", "b", roleA)), s.Delete(object("ns", "a", nil)))
			},
			want: contents{"ns/b": roleA},
		},
		"delete of a final state unknown": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "a", roleA)), s.Delete(cache.DeletedFinalStateUnknown{Key: "ns/a"}))
			},
			want: contents{},
		},
		"delete of what is not held": {
			ops:  func(s *Store) error { return s.Delete(object("ns", "a", nil)) },
			want: contents{},
		},
		"replace drops what the list lacks": {
			ops: func(s *Store) error {
				return firstErr(s.Add(object("ns", "gone", roleA)), s.Add(object("ns", "kept", roleA)),
					s.Replace([]any{object("ns", "kept", roleB), object("other", "new", nil)}, "9"))
			},
			want: contents{"ns/kept": roleB, "other/new": nil},
		},
		"replace with objects the reflector compacted": {
			ops: func(s *Store) error {
				a, err := s.Transformer()(object("ns", "a", withOther(roleA)))
				if err != nil {
					return err
				}
				return s.Replace([]any{a, object("ns", "b", roleB)}, "9")
			},
			want: contents{"ns/a": roleA, "ns/b": roleB},
		},
		"cluster-scoped": {
			ops:  func(s *Store) error { return s.Add(object("", "team-a", roleA)) },
			want: contents{"/team-a": roleA},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var g gauge
			s := NewStore(keepPrefixed, g.set)
			if err := tc.ops(s); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, dump(s)); diff != "" {
				t.Errorf("contents (-want +got):\n%s", diff)
			}
			if g.n != len(tc.want) || s.Len() != len(tc.want) {
				t.Errorf("count reported %d, Len %d, want %d", g.n, s.Len(), len(tc.want))
			}
			// Every annotation set held is referenced, and only those.
			refs := map[*annotationSet]int{}
			for _, t := range s.objects {
				t.each(func(_ string, r record) {
					if r.set != nil {
						refs[r.set]++
					}
				})
			}
			for key, set := range s.sets {
				if refs[set] != set.refs || set.key != key {
					t.Errorf("set %q: %d references, counted %d", key, refs[set], set.refs)
				}
				delete(refs, set)
			}
			if len(refs) != 0 {
				t.Errorf("%d sets in use are not in the table", len(refs))
			}
		})
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestStoreLookup(t *testing.T) {
	s := NewStore(keepPrefixed, nil)
	if err := s.Add(object("ns", "a", roleA)); err != nil {
		t.Fatal(err)
	}
	got, when, ok := s.Lookup("ns", "a")
	if diff := cmp.Diff(roleA, got); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if !ok || when != created.Unix() {
		t.Errorf("Lookup = %v, %v; want %v, true", when, ok, created.Unix())
	}
	if _, _, ok := s.Lookup("ns", "b"); ok {
		t.Error("Lookup found an object never added")
	}
	if _, _, ok := s.Lookup("other", "a"); ok {
		t.Error("Lookup found an object in the wrong namespace")
	}
}

func TestStoreSharesEqualAnnotationSets(t *testing.T) {
	s := NewStore(keepPrefixed, nil)
	for i := range 10 {
		// Equal sets from distinct maps, with other annotations that vary.
		a := map[string]string{"other.io/i": fmt.Sprint(i)}
		for k, v := range roleB {
			a[k] = v
		}
		if err := s.Add(object("ns", fmt.Sprint(i), a)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.sets) != 1 {
		t.Fatalf("%d sets for 10 equal ones", len(s.sets))
	}
	first, _, _ := s.Lookup("ns", "0")
	last, _, _ := s.Lookup("ns", "9")
	if fmt.Sprintf("%p", first) != fmt.Sprintf("%p", last) {
		t.Error("equal annotation sets are stored twice")
	}
	for i := range 10 {
		if err := s.Delete(object("ns", fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.sets) != 0 || len(s.objects) != 0 {
		t.Errorf("%d sets and %d namespaces left after every object was deleted", len(s.sets), len(s.objects))
	}
}

func TestStoreHasSyncedAfterFirstReplace(t *testing.T) {
	s := NewStore(keepPrefixed, nil)
	if err := s.Add(object("ns", "a", nil)); err != nil {
		t.Fatal(err)
	}
	if s.HasSynced() {
		t.Fatal("synced before the initial list")
	}
	if err := s.Replace(nil, "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Synced():
	default:
		t.Fatal("Synced not closed by Replace")
	}
	if !s.HasSynced() || s.Replace(nil, "2") != nil || !s.HasSynced() {
		t.Error("a second Replace changed the synced state or failed")
	}
}

func TestStoreRejectsUnknownObjects(t *testing.T) {
	s := NewStore(keepPrefixed, nil)
	for name, err := range map[string]error{
		"add":       s.Add("ns/a"),
		"delete":    s.Delete(42),
		"replace":   s.Replace([]any{object("ns", "ok", nil), struct{}{}}, "1"),
		"transform": func() error { _, err := s.Transformer()(3.5); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "unexpected object type") {
			t.Errorf("%s: got %v, want an unexpected object type error", name, err)
		}
	}
	if diff := cmp.Diff(contents{"ns/ok": nil}, dump(s)); diff != "" {
		t.Errorf("a bad item changed more than itself (-want +got):\n%s", diff)
	}
}

// The encoding of a set is unambiguous: sets that differ never share one,
// whatever bytes their values hold.
func TestAnnotationSetEncoding(t *testing.T) {
	sets := map[string]map[string]string{
		"none":             nil,
		"one":              {"a/b": "c"},
		"two":              {"a/b": "c", "a/d": "e"},
		"empty value":      {"a/b": ""},
		"value like pairs": {"a/b": "c3:a/d1:e"},
		"nul and colons":   {"a/b": "x\x00:1:"},
		"digits":           {"a/b": "12:34"},
		"unicode":          {"a/ü": "ß"},
	}
	seen := map[string]string{}
	for name, set := range sets {
		enc := encodeSet(set)
		if other, ok := seen[enc]; ok {
			t.Errorf("%s and %s share the encoding %q", name, other, enc)
		}
		seen[enc] = name
		if set == nil {
			if enc != "" {
				t.Errorf("%s: encoded as %q, want empty", name, enc)
			}
			continue
		}
		got, err := decodeSet(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(set, got); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", name, diff)
		}
	}
	for _, bad := range []string{"x", "3:ab", "-1:a", "1:a", "1:a9:b"} {
		if _, err := decodeSet(bad); err == nil {
			t.Errorf("decodeSet(%q) did not fail", bad)
		}
	}
}

// heapInUse is the heap in use once garbage is collected.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// The store's size per object, with half the objects annotated alike (as
// in the scale benchmark). A regression guard with a wide margin: about
// 35 bytes were measured.
func TestStoreMemoryPerObject(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 50,000 objects")
	}
	const n = 50000
	list := make([]any, n)
	for i := range list {
		o := object(fmt.Sprintf("scale-%03d", i/1000), fmt.Sprintf("sa-%06d", i), nil)
		if i%2 == 0 {
			o.Annotations = roleA
		}
		list[i] = o
	}
	before := heapInUse()
	s := NewStore(keepPrefixed, nil)
	if err := s.Replace(list, "1"); err != nil {
		t.Fatal(err)
	}
	after := heapInUse()
	runtime.KeepAlive(list)
	perObject := (float64(after) - float64(before)) / n
	t.Logf("%.0f bytes per object held", perObject)
	if perObject > 80 {
		t.Errorf("%.0f bytes per object held, want under 80", perObject)
	}
	runtime.KeepAlive(s)
}

// Lookup is on every admission's path: it allocates nothing.
func TestStoreLookupDoesNotAllocate(t *testing.T) {
	s := NewStore(keepPrefixed, nil)
	list := []any{object("ns", "a", roleA)}
	for i := range 100 {
		list = append(list, object("ns", fmt.Sprintf("sa-%03d", i), nil))
	}
	if err := s.Replace(list, "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(object("ns", "added", roleB)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "sa-050", "added", "missing"} {
		if n := testing.AllocsPerRun(100, func() { s.Lookup("ns", name) }); n != 0 {
			t.Errorf("Lookup(ns, %s) allocates %v times", name, n)
		}
	}
}
