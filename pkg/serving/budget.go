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

// Budget bounds the memory that the requests in flight take for their
// bodies together. A body is counted as it arrives, a chunk at a time and
// only for bytes that have arrived, never from Content-Length: a stream
// that announces 7 MiB and sends nothing holds nothing (1,600 such streams
// once held 32 KiB each, the whole budget). Each byte counts cost times:
// what a handler builds from a body (a buffer grown by doubling, the
// decoded objects, the answer) takes several times its size, and all of
// it is held until the handler returns.
//
// A share of the budget is reserved for small bodies (the API server's
// reviews are a few KiB to 100 KiB): they take from it first, and wait
// only behind each other, never behind big bodies' reservations (the
// semaphores are FIFO).
//
// A request that finds no room for its first chunk within Wait is answered
// 503 with Retry-After and its body is not read; one that runs out later
// reads ErrBusy.
type Budget struct {
	shared *semaphore.Weighted
	small  *semaphore.Weighted // reserved for small bodies
	total  int64
	// reserve is the size of small.
	reserve int64
	// maxBody is the largest body accepted: a body may read one byte
	// more (to tell its reader it is too large), then reads ErrTooLarge.
	maxBody int64
	// smallBody is the largest Content-Length that may use the reserve.
	smallBody int64
	cost      int64
	wait      time.Duration
}

const (
	// budgetChunk is the most a body reads before it takes budget for it.
	budgetChunk = 32 << 10
	// DefaultBudgetWait is how long a request waits for room in the budget.
	DefaultBudgetWait = time.Second
	// DefaultBudgetFraction of the memory limit (GOMEMLIMIT) goes to
	// request bodies, at BodyCost bytes per body byte.
	DefaultBudgetFraction = 0.125
	// BodyCost is what a byte of body costs in memory while its request is
	// handled: reading and decoding a 6 MiB AdmissionReview allocates 4.3
	// times its size (the buffer's doublings, then the decoded Pod).
	BodyCost = 4
	// SmallBody is the largest body that may use the reserved share.
	SmallBody = 256 << 10
	// noLimitBudget is the budget when GOMEMLIMIT is not set.
	noLimitBudget = 64 << 20
)

// NewBudget returns a budget of total bytes for bodies of at most maxBody
// bytes each, each byte counting BodyCost. A quarter of it (at least room
// for four SmallBody bodies) is reserved for bodies of at most SmallBody
// bytes; total is raised if below what one largest body and the reserve
// take, so that a largest body always fits.
func NewBudget(total, maxBody int64, wait time.Duration) *Budget {
	pauses.start()
	const cost = BodyCost
	smallBody := min(int64(SmallBody), maxBody)
	reserve := max(total/4, 4*cost*(smallBody+1))
	total = max(total, cost*(maxBody+1)+reserve)
	return &Budget{
		shared: semaphore.NewWeighted(total - reserve), small: semaphore.NewWeighted(reserve),
		total: total, reserve: reserve, maxBody: maxBody, smallBody: smallBody, cost: cost, wait: wait,
	}
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

// Wrap makes h's request bodies count against the budget, until h returns.
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
		body := &budgetBody{ReadCloser: r.Body, b: b, ctx: r.Context(),
			small: r.ContentLength > 0 && r.ContentLength <= b.smallBody}
		defer body.release()
		// Room for a first chunk now, or the body is not read at all; the
		// room is not kept: a body that sends nothing holds nothing.
		if err := body.take(min(budgetChunk, max(r.ContentLength, 1))); err != nil {
			WriteBusy(w)
			return
		}
		body.release()
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

// budgetBody takes budget for the bytes it has read, and gives all of it
// back once the handler is done.
type budgetBody struct {
	io.ReadCloser
	b     *Budget
	ctx   context.Context
	small bool // Content-Length within SmallBody: may use the reserve
	// Taken from the budget, of the shared and the reserved part.
	heldShared, heldSmall int64
	read                  int64
	refused               bool // counted as refused once
}

// take takes the budget of n body bytes, waiting at most the budget's
// wait: a small body from the reserve, else from the shared part if it
// has room now, else it waits for the reserve; a big body waits for the
// shared part.
func (r *budgetBody) take(n int64) error {
	b := r.b
	n *= b.cost
	switch {
	case r.small && b.small.TryAcquire(n):
		r.heldSmall += n
	case r.small && b.shared.TryAcquire(n):
		r.heldShared += n
	case r.small:
		if err := b.acquire(r.ctx, b.small, n); err != nil {
			return r.refuse(err)
		}
		r.heldSmall += n
	default:
		if err := b.acquire(r.ctx, b.shared, n); err != nil {
			return r.refuse(err)
		}
		r.heldShared += n
	}
	return nil
}

// refuse counts the request as refused, once, and returns err.
func (r *budgetBody) refuse(err error) error {
	if !r.refused {
		r.refused = true
		metricsOf(r.ctx).budgetRefused()
	}
	return err
}

// acquire takes n bytes of sem, waiting at most the budget's wait on the
// pause clock: a pause of the process during the wait (or just before it)
// does not count, or a request that arrived during a pause would be
// refused for it.
func (b *Budget) acquire(ctx context.Context, sem *semaphore.Weighted, n int64) error {
	if sem.TryAcquire(n) {
		return nil
	}
	now := time.Now()
	dl := deadline{t: now.Add(b.wait), set: now, paused: pauses.total()}
	for {
		wctx, cancel := context.WithDeadline(ctx, dl.t)
		err := sem.Acquire(wctx, n)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !dl.extend() {
			return ErrBusy
		}
		metricsOf(ctx).extended()
	}
}

// Read reads at most a chunk, then takes budget for what it read: bytes
// not yet read stay in the connection's flow-control window (HTTP/2) or
// socket buffer, which bound them. Bytes it has no budget for are
// dropped, and the read fails with ErrBusy.
func (r *budgetBody) Read(p []byte) (int, error) {
	limit := r.b.maxBody + 1 - r.read
	if limit <= 0 {
		return 0, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, r.b.maxBody)
	}
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(int64(len(p)), budgetChunk, limit)]
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		if terr := r.take(int64(n)); terr != nil {
			return 0, terr
		}
		r.read += int64(n)
	}
	return n, err
}

func (r *budgetBody) release() {
	if r.heldShared > 0 {
		r.b.shared.Release(r.heldShared)
	}
	if r.heldSmall > 0 {
		r.b.small.Release(r.heldSmall)
	}
	r.heldShared, r.heldSmall = 0, 0
}

// errBody is a body that fails every read.
type errBody struct{ err error }

func (b errBody) Read([]byte) (int, error) { return 0, b.err }
func (b errBody) Close() error             { return nil }
