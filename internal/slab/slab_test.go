package slab

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPiecesDoNotShare appends to each piece within its room and past it,
// and checks that no piece sees another's values.
func TestPiecesDoNotShare(t *testing.T) {
	var s Slab[int]
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var pieces [][]int
		var want [][]int
		for i := range 1 + rng.IntN(20) {
			n, room := rng.IntN(6), rng.IntN(4)
			src := make([]int, n)
			for j := range src {
				src[j] = round*1000 + i*10 + j
			}
			p := s.Copy(src, room)
			if len(p) != n || cap(p) != n+room {
				t.Fatalf("Copy(%d values, room %d): len %d cap %d", n, room, len(p), cap(p))
			}
			// Append up to room+2: the first room values stay in place,
			// the rest move the slice out of the slab.
			for k := range room + rng.IntN(3) {
				p = append(p, -(i*100 + k))
			}
			pieces = append(pieces, p)
			want = append(want, slices.Clone(p))
		}
		for i := range pieces {
			if !slices.Equal(pieces[i], want[i]) {
				t.Fatalf("round %d: piece %d is %v, want %v", round, i, pieces[i], want[i])
			}
		}
		s.Reset(1 << 10)
	}
}

func TestTakeIsZeroAfterReset(t *testing.T) {
	var s Slab[string]
	p := s.Take(3, 2)
	p[0], p[2] = "secret", "value"
	p = append(p, "appended")
	s.Reset(1 << 10)
	q := s.Take(3, 2)
	if &q[0] != &p[0] {
		t.Fatal("Reset did not make the array free again")
	}
	for i, v := range q[:cap(q)] {
		if v != "" {
			t.Fatalf("value %d after Reset is %q, want zero", i, v)
		}
	}
}

func TestNilAndEmpty(t *testing.T) {
	var s Slab[int]
	if got := s.Copy(nil, 3); got != nil {
		t.Fatalf("Copy(nil) = %v, want nil", got)
	}
	if got := s.Copy([]int{}, 0); got == nil || len(got) != 0 {
		t.Fatalf("Copy([]) = %#v, want an empty, non-nil slice", got)
	}
}

func TestReserveKeepsTakesInOneArray(t *testing.T) {
	var s Slab[int]
	s.Take(10, 0) // the first array is full
	s.Reserve(30)
	a := s.Take(10, 5)
	b := s.Take(15, 0)
	if &s.buf[0] != &a[0] || &s.buf[15] != &b[0] {
		t.Fatal("reserved takes are not consecutive in one array")
	}
}

func TestResetDropsALargeArray(t *testing.T) {
	var s Slab[int]
	s.Take(100, 0)
	s.Reset(64)
	if s.buf != nil {
		t.Fatalf("an array of %d values was kept past a limit of 64", len(s.buf))
	}
}

func BenchmarkTake(b *testing.B) {
	var s Slab[[64]byte]
	for b.Loop() {
		for range 8 {
			s.Take(5, 2)
		}
		s.Reset(1 << 10)
	}
}
