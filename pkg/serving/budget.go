package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is what a request body's Read returns when the bytes it would
// add do not fit in the budget within the wait. Handlers answer it with
// WriteBusy.
var ErrBusy = errors.New("request bodies in flight exceed the server's memory budget")

// ErrTooLarge is what a request body's Read returns when its
// Content-Length, or what it sent, exceeds the largest body accepted.
var ErrTooLarge = errors.New("request body is too large")

// Budget bounds the bytes of request bodies that all requests in flight
// hold together. Bytes are counted as they arrive, a chunk at a time,
// never from Content-Length: a body announced and never sent holds
// nothing (a stream announcing 7 MiB and sending nothing once took 7 MiB
// of buffer). A request that cannot get its first chunk within Wait is
// answered 503 with Retry-After and its body is not read; one that runs
// out later reads ErrBusy. What a handler builds from the body (decoded
// objects) is not counted, so the budget is a fraction of the memory
// limit, not all of it.
type Budget struct {
	sem   *semaphore.Weighted
	total int64
	// maxBody is the largest body accepted: a body may read one byte
	// more (to tell its reader it is too large), then reads ErrTooLarge.
	maxBody int64
	wait    time.Duration
}

const (
	// budgetChunk is how much a body takes from the budget at a time.
	budgetChunk = 32 << 10
	// DefaultBudgetWait is how long a request waits for room in the budget.
	DefaultBudgetWait = time.Second
	// DefaultBudgetFraction of the memory limit (GOMEMLIMIT) goes to
	// request bodies: a body read into a growing buffer takes up to twice
	// its size, and its decoded form as much again.
	DefaultBudgetFraction = 0.125
	// noLimitBudget is the budget when GOMEMLIMIT is not set.
	noLimitBudget = 64 << 20
)

// NewBudget returns a budget of total bytes for bodies of at most maxBody
// bytes each; total is raised to twice maxBody if below, so that one
// largest body always fits.
func NewBudget(total, maxBody int64, wait time.Duration) *Budget {
	pauses.start()
	total = max(total, 2*maxBody)
	return &Budget{sem: semaphore.NewWeighted(total), total: total, maxBody: maxBody, wait: wait}
}

// MemoryBudget is fraction of the Go memory limit (GOMEMLIMIT, which the
// install sets from the container's limit), or 64 MiB without one.
func MemoryBudget(fraction float64) int64 {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || limit <= 0 {
		return noLimitBudget
	}
	return int64(float64(limit) * fraction)
}

// Total is the budget in bytes.
func (b *Budget) Total() int64 { return b.total }

// WriteBusy answers a request the budget has no room for: 503 with
// Retry-After, which the API server's client honours.
func WriteBusy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, ErrBusy.Error(), http.StatusServiceUnavailable)
}

// Wrap makes h's request bodies count against the budget.
//
// The handler gets a shallow copy of the request with the counting body:
// the server's own request keeps net/http's body, which it inspects after
// the handler to decide whether the connection can be reused. Swapping
// the body in place hid an early close from it: the rest of an unread
// 6 MiB body was then parsed as the next request.
func (b *Budget) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > b.maxBody {
			// Unread: the handler answers it (a webhook within its
			// protocol), and net/http closes the connection after.
			h.ServeHTTP(w, withBody(r, errBody{fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, r.ContentLength, b.maxBody)}))
			return
		}
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		body := &budgetBody{ReadCloser: r.Body, b: b, ctx: r.Context(), remaining: r.ContentLength}
		defer body.release()
		if err := body.reserve(); err != nil {
			WriteBusy(w)
			return
		}
		h.ServeHTTP(w, withBody(r, body))
	})
}

// withBody is a shallow copy of r reading body.
func withBody(r *http.Request, body io.ReadCloser) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = body
	return r2
}

// budgetBody takes budget for its bytes before it reads them, and gives
// all of it back once the handler is done.
type budgetBody struct {
	io.ReadCloser
	b   *Budget
	ctx context.Context
	// remaining is what Content-Length says is left, -1 when unknown.
	remaining int64
	held      int64 // taken from the budget
	unused    int64 // of held, not yet filled by a read
	read      int64
}

// reserve takes the next chunk, waiting at most the budget's wait.
func (r *budgetBody) reserve() error {
	n := int64(budgetChunk)
	if r.remaining >= 0 {
		n = min(n, r.remaining+1) // +1: room to see the end
	}
	if r.read+n > r.b.maxBody+1 {
		n = r.b.maxBody + 1 - r.read
	}
	if n <= 0 {
		return nil
	}
	if err := r.b.acquire(r.ctx, n); err != nil {
		return err
	}
	r.held += n
	r.unused += n
	return nil
}

// acquire takes n bytes of the budget, waiting at most the budget's wait
// on the pause clock: a pause of the process during the wait (or just
// before it) does not count, or a request that arrived during a pause
// would be refused for it.
func (b *Budget) acquire(ctx context.Context, n int64) error {
	if b.sem.TryAcquire(n) {
		return nil
	}
	now := time.Now()
	dl := deadline{t: now.Add(b.wait), set: now, paused: pauses.total()}
	for {
		wctx, cancel := context.WithDeadline(ctx, dl.t)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !dl.extend() {
			return ErrBusy
		}
	}
}

func (r *budgetBody) Read(p []byte) (int, error) {
	if r.unused == 0 {
		if r.read > r.b.maxBody {
			return 0, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, r.b.maxBody)
		}
		if err := r.reserve(); err != nil {
			return 0, err
		}
		if r.unused == 0 {
			return 0, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, r.b.maxBody)
		}
	}
	if int64(len(p)) > r.unused {
		p = p[:r.unused]
	}
	n, err := r.ReadCloser.Read(p)
	r.unused -= int64(n)
	r.read += int64(n)
	if r.remaining >= 0 {
		r.remaining = max(r.remaining-int64(n), 0)
	}
	return n, err
}

func (r *budgetBody) release() {
	if r.held > 0 {
		r.b.sem.Release(r.held)
		r.held, r.unused = 0, 0
	}
}

// errBody is a body that fails every read.
type errBody struct{ err error }

func (b errBody) Read([]byte) (int, error) { return 0, b.err }
func (b errBody) Close() error             { return nil }
