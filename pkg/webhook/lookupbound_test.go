package webhook

import (
	"context"
	"errors"
	"testing"
	"time"
)

type valueKey struct{}

// TestLookupBoundIsATimeout: once asked, the bound is its parent with a
// timeout: its deadline, values, expiry and cancellation.
func TestLookupBoundIsATimeout(t *testing.T) {
	parent := context.WithValue(context.Background(), valueKey{}, "v")
	before := time.Now()
	b := newLookupBound(parent, 50*time.Millisecond)
	defer b.stop()
	d, ok := b.Deadline()
	if !ok || d.Before(before.Add(50*time.Millisecond)) || d.After(time.Now().Add(50*time.Millisecond)) {
		t.Fatalf("deadline %v (%t) is not 50ms from when it was asked", d.Sub(before), ok)
	}
	if got := b.Value(valueKey{}); got != "v" {
		t.Fatalf("value %v, want the parent's", got)
	}
	if b.Err() != nil {
		t.Fatalf("error %v before the deadline", b.Err())
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not done 10s after a 50ms deadline")
	}
	if !errors.Is(b.Err(), context.DeadlineExceeded) {
		t.Fatalf("error %v after the deadline, want DeadlineExceeded", b.Err())
	}
	// A context made from it ends with it.
	child, cancel := context.WithCancel(b)
	defer cancel()
	<-child.Done()
}

func TestLookupBoundFollowsItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	b := newLookupBound(parent, time.Hour)
	defer b.stop()
	cancel()
	<-b.Done()
	if !errors.Is(b.Err(), context.Canceled) {
		t.Fatalf("error %v after the parent's cancel, want Canceled", b.Err())
	}
}

// TestLookupBoundStopped: stopped, asked or not, the bound is canceled, as
// a context is after its cancel function, and asking it later is safe (a
// shared lookup may outlive the admission that started it).
func TestLookupBoundStopped(t *testing.T) {
	for _, asked := range []bool{false, true} {
		b := newLookupBound(context.Background(), time.Hour)
		if asked {
			b.Done()
		}
		b.stop()
		b.stop()
		select {
		case <-b.Done():
		default:
			t.Fatalf("asked %t: not done after stop", asked)
		}
		if !errors.Is(b.Err(), context.Canceled) {
			t.Fatalf("asked %t: error %v after stop, want Canceled", asked, b.Err())
		}
	}
}

// TestLookupBoundUnaskedStartsNoTimer: a bound nothing asks for makes no
// context, so no timer: what the caches answer costs none.
func TestLookupBoundUnaskedStartsNoTimer(t *testing.T) {
	b := newLookupBound(context.Background(), time.Hour)
	b.stop()
	if b.bounded != stopped {
		t.Fatal("a bound nothing asked for made a context of its own")
	}
}
