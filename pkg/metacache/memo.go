package metacache

import (
	"sync"
	"time"
)

// memo remembers up to max live answers, each until it expires. When it
// is full the oldest key is forgotten, so names that do not exist, however
// many, cannot grow it. Not safe for concurrent use; the Cache locks.
type memo struct {
	max     int
	entries map[name]memoEntry
	// ring holds every key of entries once, in the order they were added;
	// ring[next] is the oldest once the ring is full.
	ring []name
	next int
}

type memoEntry struct {
	entry   Entry
	expires time.Time
}

func newMemo(max int) *memo {
	return &memo{max: max, entries: map[name]memoEntry{}}
}

func (m *memo) get(key name, now time.Time) (Entry, bool) {
	me, ok := m.entries[key]
	if !ok || now.After(me.expires) {
		// An expired entry keeps its place until it is replaced.
		return Entry{}, false
	}
	return me.entry, true
}

func (m *memo) put(key name, e Entry, expires time.Time) {
	if _, ok := m.entries[key]; !ok {
		if len(m.ring) < m.max {
			m.ring = append(m.ring, key)
		} else {
			delete(m.entries, m.ring[m.next])
			m.ring[m.next] = key
			m.next = (m.next + 1) % m.max
		}
	}
	m.entries[key] = memoEntry{entry: e, expires: expires}
}

func (m *memo) len() int { return len(m.entries) }

// changes tells lookups waiting on a key that the watch stored it. Waiters
// of one key share one channel, closed at the change; a key nobody waits
// on any more is dropped, so waiters for random names leave nothing.
type changes struct {
	mu    sync.Mutex
	byKey map[name]*waiters
}

type waiters struct {
	ch chan struct{}
	n  int
}

func newChanges() *changes { return &changes{byKey: map[name]*waiters{}} }

// wait returns a channel closed when key is next stored, and done, which
// the caller calls (once or more) when it stops waiting.
func (c *changes) wait(key name) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.byKey[key]
	if !ok {
		w = &waiters{ch: make(chan struct{})}
		c.byKey[key] = w
	}
	w.n++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if w.n--; w.n == 0 && c.byKey[key] == w {
				delete(c.byKey, key)
			}
		})
	}
}

// stored wakes the waiters of namespace/name; all is true when the whole
// store was replaced, which wakes every waiter.
func (c *changes) stored(namespace, objName string, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		for k, w := range c.byKey {
			close(w.ch)
			delete(c.byKey, k)
		}
		return
	}
	key := name{namespace, objName}
	if w, ok := c.byKey[key]; ok {
		close(w.ch)
		delete(c.byKey, key)
	}
}

// len is the number of keys waited on.
func (c *changes) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}
