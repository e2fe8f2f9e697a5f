// Package slab hands out slices of arrays that are used again, for values
// that live exactly as long as one admission: the Pod the review is read
// into and the copy of it the mutation makes. Made anew for each
// admission, they were two thirds of the webhook's garbage under load, and
// the collector's work grows with the garbage.
//
// A slab is not safe for concurrent use, and nothing it handed out may be
// used after Reset: the owner resets it once the admission is answered.
package slab

// Slab hands out pieces of one array. Everything past what it handed out
// is zero, so a piece needs no clearing.
type Slab[T any] struct {
	buf  []T
	used int
}

// Take returns n zero values, with room for more appended in place: up to
// room more fit without moving the slice, and appending past that moves it
// out of the slab rather than into a neighbouring piece.
func (s *Slab[T]) Take(n, room int) []T {
	need := n + room
	if need == 0 {
		return []T{} // empty, not nil, as a copy of an empty list is
	}
	if s.used+need > len(s.buf) {
		// The pieces handed out stay in the old array, which the
		// collector frees once they are dropped. Doubling, a slab used
		// again soon holds all of an admission's lists in one array.
		s.buf, s.used = make([]T, max(2*len(s.buf), need)), 0
	}
	p := s.buf[s.used : s.used+n : s.used+need]
	s.used += need
	return p
}

// Copy returns a copy of src with room for more (see Take); a nil src
// stays nil.
func (s *Slab[T]) Copy(src []T, room int) []T {
	if src == nil {
		return nil
	}
	p := s.Take(len(src), room)
	copy(p, src)
	return p
}

// Grow returns p with room for n more values in place, as slices.Grow
// does: p itself when it has the room, else a copy of it in the slab.
func (s *Slab[T]) Grow(p []T, n int) []T {
	if cap(p)-len(p) >= n {
		return p
	}
	q := s.Take(len(p), n)
	copy(q, p)
	return q
}

// Reserve makes the next takes of n values in all come from one array.
func (s *Slab[T]) Reserve(n int) {
	if s.used+n > len(s.buf) {
		s.buf, s.used = make([]T, max(2*len(s.buf), n)), 0
	}
}

// Reset makes the whole array free again, zeroing what was handed out so
// that it holds nothing of the admission. An array of more than limit
// values is dropped, so that one large Pod does not keep its memory.
func (s *Slab[T]) Reset(limit int) {
	if len(s.buf) > limit {
		s.buf, s.used = nil, 0
		return
	}
	clear(s.buf[:s.used])
	s.used = 0
}
