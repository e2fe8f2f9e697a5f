package metacache

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A table answers like a map through any sequence of puts and removes,
// across the compactions they cause.
func TestTableMatchesAMap(t *testing.T) {
	for name, tc := range map[string]struct {
		initial int     // names in the first base
		ops     int     // random puts and removes
		names   int     // distinct names the ops draw from
		remove  float64 // share of removes
	}{
		"empty start, mostly puts": {initial: 0, ops: 5000, names: 800, remove: 0.2},
		"large base, churn":        {initial: 2000, ops: 20000, names: 3000, remove: 0.5},
		"drain":                    {initial: 500, ops: 5000, names: 500, remove: 0.9},
	} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[string]int64{}
			var names []string
			var recs []record
			for i := range tc.initial {
				n := fmt.Sprintf("sa-%06d", i)
				names = append(names, n)
				recs = append(recs, record{created: int64(i)})
				want[n] = int64(i)
			}
			tab := newTable(names, recs)
			for op := range tc.ops {
				n := fmt.Sprintf("sa-%06d", rng.IntN(tc.names))
				_, held := want[n]
				if rng.Float64() < tc.remove {
					old, ok := tab.remove(n)
					if ok != held || ok && old.created != want[n] {
						t.Fatalf("op %d: remove(%s) = %v, %v; want %v, %v", op, n, old.created, ok, want[n], held)
					}
					delete(want, n)
					continue
				}
				old, existed := tab.put(n, record{created: int64(op)})
				if existed != held || existed && old.created != want[n] {
					t.Fatalf("op %d: put(%s) replaced %v, %v; want %v, %v", op, n, old.created, existed, want[n], held)
				}
				want[n] = int64(op)
			}
			got := map[string]int64{}
			tab.each(func(n string, r record) { got[n] = r.created })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("contents (-want +got):\n%s", diff)
			}
			if tab.live != len(want) {
				t.Errorf("live = %d, want %d", tab.live, len(want))
			}
			for i := range tc.names {
				n := fmt.Sprintf("sa-%06d", i)
				r, ok := tab.get(n)
				if w, held := want[n]; ok != held || ok && r.created != w {
					t.Errorf("get(%s) = %v, %v; want %v, %v", n, r.created, ok, w, held)
				}
			}
			for i := 1; i < len(tab.ends); i++ {
				if tab.name(i-1) >= tab.name(i) {
					t.Fatalf("base not sorted at %d: %q, %q", i, tab.name(i-1), tab.name(i))
				}
			}
		})
	}
}

// each calls f with every record held.
func (t *table) each(f func(name string, r record)) {
	for i, r := range t.recs {
		if r.set != tombstone {
			f(t.name(i), r)
		}
	}
	for n, r := range t.added {
		f(n, r)
	}
}
