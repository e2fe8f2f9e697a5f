package metacache

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/fakemeta"
)

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// counts is an Observer that counts what the tests look at.
type counts struct {
	noObserver
	waits, notFoundHits, failures atomic.Int64
}

func (c *counts) Wait()          { c.waits.Add(1) }
func (c *counts) NotFoundHit()   { c.notFoundHits.Add(1) }
func (c *counts) LookupFailure() { c.failures.Add(1) }

func shortContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A "not found" is remembered for NotFoundFor: asking again within it costs
// no GET (and still answers not found), after it costs one.
func TestNotFoundIsRemembered(t *testing.T) {
	client := fakemeta.NewClient(t)
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	clk := &clock{now: time.Now()}
	obs := &counts{}
	c := NewServiceAccounts(client, saPrefixes, Options{NotFoundFor: 5 * time.Second, Now: clk.Now, Observer: obs})
	c.notFoundWait = time.Millisecond // nothing will show up; do not wait for it

	for i, step := range []struct {
		advance  time.Duration
		wantGets int64
	}{{0, 1}, {0, 1}, {4 * time.Second, 1}, {2 * time.Second, 2}, {0, 2}} {
		clk.advance(step.advance)
		got, err := c.Get(context.Background(), "ns", "nobody")
		if err != nil || got.Found {
			t.Fatalf("step %d: got %+v, %v; want not found, no error", i, got, err)
		}
		if n := gets.Load(); n != step.wantGets {
			t.Errorf("step %d: %d GETs, want %d", i, n, step.wantGets)
		}
	}
	if n := obs.notFoundHits.Load(); n != 3 {
		t.Errorf("%d not-found hits counted, want 3", n)
	}
}

// However many names that do not exist are looked up, at most
// MaxRemembered answers of each kind are kept, and no waiter is left
// behind.
func TestRememberedAnswersAreBounded(t *testing.T) {
	client := fakemeta.NewClient(t)
	c := NewServiceAccounts(client, saPrefixes, Options{MaxRemembered: 8})
	for i := range 100 {
		if _, err := c.Get(context.Background(), "ns", fmt.Sprintf("random-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.notFound.len(); n != 8 {
		t.Errorf("%d not-found answers remembered, want 8 (MaxRemembered)", n)
	}
	if n := c.changes.len(); n != 0 {
		t.Errorf("%d keys still waited on after every lookup returned", n)
	}
	// The newest are the ones kept.
	if _, ok := c.remembered(c.notFound, name{"ns", "random-99"}); !ok {
		t.Error("the newest answer was forgotten")
	}
	if _, ok := c.remembered(c.notFound, name{"ns", "random-0"}); ok {
		t.Error("the oldest answer is still remembered")
	}
}

// A remembered "not found" never hides what the watch shows: neither an
// object that arrives before the next Get, nor one that arrives while a
// Get waits on the remembered answer.
func TestWatchOverridesRememberedNotFound(t *testing.T) {
	role := map[string]string{saPrefix + "/role-arn": "arn"}
	for _, during := range []bool{false, true} {
		t.Run(fmt.Sprintf("during the wait %t", during), func(t *testing.T) {
			client := fakemeta.NewClient(t)
			gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
			obs := &counts{}
			c := NewServiceAccounts(client, saPrefixes, Options{NotFoundFor: time.Hour, Observer: obs})
			c.notFoundWait = time.Minute // the test ends it by the watch, or fails by its deadline
			fakemeta.Start(t, c)
			if got, err := c.Get(context.Background(), "ns", "new"); err != nil || got.Found {
				t.Fatalf("before creation: %+v, %v; want not found", got, err)
			}
			create := func() {
				if err := client.Tracker().Create(serviceAccounts, sa("ns", "new", old, role), "ns", metav1.CreateOptions{}); err != nil {
					t.Error(err)
				}
			}
			result := make(chan Entry, 1)
			if during {
				go func() {
					e, _ := c.Get(shortContext(t, 30*time.Second), "ns", "new")
					result <- e
				}()
				waitFor(t, func() bool { return obs.notFoundHits.Load() == 1 })
				create()
			} else {
				create()
				waitFor(t, func() bool { _, _, ok := c.store.Lookup("ns", "new"); return ok })
				e, _ := c.Get(context.Background(), "ns", "new")
				result <- e
			}
			if got := <-result; !got.Found || got.Annotations[saPrefix+"/role-arn"] != "arn" {
				t.Errorf("after creation: %+v; want the watched object", got)
			}
			if n := gets.Load(); n != 1 {
				t.Errorf("%d GETs, want only the one before creation", n)
			}
		})
	}
}

// Live GETs are bounded by the rate: with a bucket of 3 that does not
// refill within the test, 20 concurrent misses for distinct names send 3
// GETs; the others fail in their time bound, saying why.
func TestLookupRateIsBounded(t *testing.T) {
	client := fakemeta.NewClient(t)
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	obs := &counts{}
	c := NewServiceAccounts(client, saPrefixes, Options{
		LookupRate: 1e-6, LookupBurst: 3, LookupTimeout: 200 * time.Millisecond, Observer: obs,
	})
	const callers = 20
	var wg sync.WaitGroup
	var limited atomic.Int64
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Get(context.Background(), "ns", fmt.Sprintf("random-%d", i))
			if err != nil {
				if !strings.Contains(err.Error(), "service account lookups over their rate limit") {
					t.Errorf("got %v, want a rate limit error", err)
				}
				limited.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := gets.Load(); n != 3 {
		t.Errorf("%d GETs, want 3 (the burst)", n)
	}
	if n := limited.Load(); n != callers-3 {
		t.Errorf("%d lookups rate limited, want %d", n, callers-3)
	}
	if n := obs.waits.Load(); n != callers-3 {
		t.Errorf("%d waits counted, want %d", n, callers-3)
	}
	if n := obs.failures.Load(); n != callers-3 {
		t.Errorf("%d failures counted, want %d", n, callers-3)
	}
}

// A flood of names that do not exist spends the burst, then waits for
// tokens that come too late; a real ServiceAccount created meanwhile is
// still answered, by the watch, while its lookup waits; and no more GETs
// than the burst are sent.
func TestFloodDoesNotDenyANewObject(t *testing.T) {
	client := fakemeta.NewClient(t)
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{
		MaxConcurrentLookups: 2, LookupRate: 1e-6, LookupBurst: 2, LookupTimeout: time.Minute,
	})
	fakemeta.Start(t, c)

	const flood = 50
	floodCtx, stopFlood := context.WithTimeout(context.Background(), time.Minute)
	defer stopFlood()
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Get(floodCtx, "ns", fmt.Sprintf("random-%d", i))
		}()
	}
	waitFor(t, func() bool { return c.Waiting() == flood-2 && gets.Load() == 2 })

	result := make(chan error, 1)
	go func() {
		// Well inside the flood's own bound (LookupTimeout): only the watch
		// can answer it in time.
		e, err := c.Get(shortContext(t, 10*time.Second), "ns", "real")
		if err == nil && (!e.Found || e.Annotations[saPrefix+"/role-arn"] != "arn") {
			err = fmt.Errorf("got %+v, want the annotated service account", e)
		}
		result <- err
	}()
	waitFor(t, func() bool { return c.Waiting() == flood-1 })
	if err := client.Tracker().Create(serviceAccounts, sa("ns", "real", time.Now(), map[string]string{saPrefix + "/role-arn": "arn"}), "ns", metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Error(err)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("%d GETs during the flood, want 2 (the burst)", n)
	}
	// The flood's callers give up; their lookups end in their own bound.
	stopFlood()
	wg.Wait()
}

// Young checks have their own slots and tokens: a flood of made-up names
// that holds every slot and token of the misses does not keep a real,
// freshly created ServiceAccount without annotations (every namespace's
// "default" at first) from being checked live.
func TestFloodDoesNotStarveYoungChecks(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "default", time.Now(), nil))
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{
		MaxConcurrentLookups: 2, LookupRate: 1e-6, LookupBurst: 2, LookupTimeout: time.Minute,
	})
	fakemeta.Start(t, c)

	const flood = 20
	floodCtx, stopFlood := context.WithTimeout(context.Background(), time.Minute)
	defer stopFlood()
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Get(floodCtx, "ns", fmt.Sprintf("random-%d", i))
		}()
	}
	waitFor(t, func() bool { return c.Waiting() == flood-2 && gets.Load() == 2 })

	got, err := c.Get(shortContext(t, 10*time.Second), "ns", "default")
	if err != nil || !got.Found || got.Annotations != nil {
		t.Errorf("young service account during the flood: %+v, %v; want found, no annotations", got, err)
	}
	if n := gets.Load(); n != 3 {
		t.Errorf("%d GETs, want the flood's 2 and the young check's", n)
	}
	stopFlood()
	wg.Wait()
}

// A lookup waiting for a slot, all of them held by GETs the API server is
// slow to answer, is answered by the watch as soon as it shows the object.
func TestLookupWaitingForASlotIsAnsweredByTheWatch(t *testing.T) {
	client := fakemeta.NewClient(t)
	gate := make(chan struct{})
	gets := fakemeta.CountGets(client, "serviceaccounts", gate, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{MaxConcurrentLookups: 1, LookupTimeout: time.Minute})
	fakemeta.Start(t, c)
	held := make(chan struct{})
	go func() {
		defer close(held)
		_, _ = c.Get(shortContext(t, time.Minute), "ns", "slow")
	}()
	waitFor(t, func() bool { return gets.Load() == 1 })

	result := make(chan error, 1)
	go func() {
		e, err := c.Get(shortContext(t, 10*time.Second), "ns", "real")
		if err == nil && (!e.Found || e.Annotations[saPrefix+"/role-arn"] != "arn") {
			err = fmt.Errorf("got %+v, want the annotated service account", e)
		}
		result <- err
	}()
	waitFor(t, func() bool { return c.Waiting() == 2 })
	if err := client.Tracker().Create(serviceAccounts, sa("ns", "real", time.Now(), map[string]string{saPrefix + "/role-arn": "arn"}), "ns", metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Error(err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GETs, want only the slow one", n)
	}
	close(gate)
	<-held
}
