package webhook

import (
	"context"
	"sync"
	"time"
)

// lookupBound is the context of an admission's lookups: its parent bounded
// by timeout, from the first time anything asks it for its deadline, its
// Done channel, its error or a value. Only a lookup the caches cannot
// answer asks; the caches answer almost every admission, and a timer for
// each (context.WithTimeout) was a thirtieth of the webhook's CPU under
// load. The lookups share the one bound, started microseconds after the
// admission, so two slow lookups cannot add up past the API server's
// timeoutSeconds.
type lookupBound struct {
	parent  context.Context
	timeout time.Duration
	once    sync.Once
	bounded context.Context
	cancel  context.CancelFunc
}

func newLookupBound(parent context.Context, timeout time.Duration) *lookupBound {
	return &lookupBound{parent: parent, timeout: timeout}
}

func (b *lookupBound) context() context.Context {
	b.once.Do(func() { b.bounded, b.cancel = context.WithTimeout(b.parent, b.timeout) })
	return b.bounded
}

func (b *lookupBound) Deadline() (time.Time, bool) { return b.context().Deadline() }
func (b *lookupBound) Done() <-chan struct{}       { return b.context().Done() }
func (b *lookupBound) Err() error                  { return b.context().Err() }
func (b *lookupBound) Value(key any) any           { return b.context().Value(key) }

// stop ends the bound, as a cancel function does; used after, it is
// canceled.
func (b *lookupBound) stop() {
	b.once.Do(func() { b.bounded, b.cancel = stopped, func() {} })
	b.cancel()
}

// stopped is the context of a bound stopped before anything asked for it.
var stopped = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
