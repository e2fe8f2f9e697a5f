package metacache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/internal/fakemeta"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
)

// saPrefix is the ServiceAccount cache's prefix, without the slash.
const saPrefix = "eks.amazonaws.com"

var saPrefixes = []string{saPrefix}

func sa(namespace, name string, created time.Time, annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, CreationTimestamp: metav1.NewTime(created),
			Annotations: annotations, Labels: map[string]string{"dropped": "yes"},
		},
	}
}

var old = time.Now().Add(-time.Hour)

func TestCachedServiceAccountNeedsNoLookup(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "app", old, map[string]string{saPrefix + "/role-arn": "arn", "other.io/x": "y"}))
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{})
	fakemeta.Start(t, c)

	got, err := c.Get(context.Background(), "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Found: true, Annotations: map[string]string{saPrefix + "/role-arn": "arn"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("%d live GETs for a cached service account", n)
	}
	// Only what Get needs is stored.
	if kept, _, _ := c.store.Lookup("ns", "app"); len(kept) != 1 {
		t.Errorf("cache keeps more than the prefixed annotations: %v", kept)
	}
}

func TestOldUnannotatedServiceAccountIsTrusted(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "plain", old, nil))
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{})
	fakemeta.Start(t, c)
	got, err := c.Get(context.Background(), "ns", "plain")
	if err != nil || !got.Found || got.Annotations != nil || gets.Load() != 0 {
		t.Errorf("got %+v, %v after %d GETs; want found, no annotations, no GET", got, err, gets.Load())
	}
}

// A miss goes to the API server; concurrent misses for one key share one
// GET, and the answer is remembered.
func TestMissSharesOneLiveLookup(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "new", time.Now(), map[string]string{saPrefix + "/role-arn": "arn"}))
	gate := make(chan struct{})
	gets := fakemeta.CountGets(client, "serviceaccounts", gate, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{}) // not started: every key misses

	const callers = 20
	var wg sync.WaitGroup
	results := make(chan Entry, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := c.Get(context.Background(), "ns", "new")
			if err != nil {
				t.Error(err)
			}
			results <- e
		}()
	}
	waitFor(t, func() bool { return c.Waiting() == callers })
	close(gate)
	wg.Wait()
	close(results)
	for e := range results {
		if !e.Found || e.Annotations[saPrefix+"/role-arn"] != "arn" {
			t.Errorf("caller got %+v", e)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d live GETs for %d concurrent misses, want 1", n, callers)
	}
	if _, err := c.Get(context.Background(), "ns", "new"); err != nil || gets.Load() != 1 {
		t.Errorf("answer not remembered: %v, %d GETs", err, gets.Load())
	}
}

func TestYoungUnannotatedServiceAccountIsCheckedLive(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "young", time.Now(), nil))
	c := NewServiceAccounts(client, saPrefixes, Options{})
	fakemeta.Start(t, c)
	// The annotation lands on the API server; the watch has not delivered it.
	client.PrependReactor("get", "serviceaccounts", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, sa("ns", "young", time.Now(), map[string]string{saPrefix + "/role-arn": "arn"}), nil
	})
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil) // runs first, then falls through
	got, err := c.Get(context.Background(), "ns", "young")
	if err != nil || got.Annotations[saPrefix+"/role-arn"] != "arn" {
		t.Fatalf("got %+v, %v; want the live annotation", got, err)
	}
	if gets.Load() != 1 {
		t.Errorf("%d live GETs, want 1", gets.Load())
	}
}

func TestMissingServiceAccountIsNotAnError(t *testing.T) {
	c := NewServiceAccounts(fakemeta.NewClient(t), saPrefixes, Options{})
	got, err := c.Get(context.Background(), "ns", "nobody")
	if err != nil || got.Found {
		t.Errorf("got %+v, %v; want not found and no error", got, err)
	}
}

func TestFailedLookupIsAnError(t *testing.T) {
	client := fakemeta.NewClient(t)
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, errors.New("connection refused"))
	c := NewServiceAccounts(client, saPrefixes, Options{})
	_, err := c.Get(context.Background(), "ns", "app")
	if err == nil || err.Error() != "get service account ns/app: connection refused" {
		t.Errorf("got %v", err)
	}
	// Failures are not remembered: the next call asks again.
	if _, err := c.Get(context.Background(), "ns", "app"); err == nil || gets.Load() != 2 {
		t.Errorf("a failure was remembered: %v after %d GETs, want an error after 2", err, gets.Load())
	}
}

func TestLookupIsBoundedInTime(t *testing.T) {
	client := fakemeta.NewClient(t)
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	client.PrependReactor("get", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		<-gate // a server that never answers; the fake ignores contexts
		return true, nil, errors.New("too late")
	})
	c := NewServiceAccounts(client, saPrefixes, Options{LookupTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "ns", "app"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
}

// The cached gauge follows the watch: the initial list, then adds and
// deletes.
func TestCachedGaugeFollowsTheWatch(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "a", old, nil), sa("ns", "b", old, map[string]string{saPrefix + "/role-arn": "arn"}))
	reg := prometheus.NewRegistry()
	c := NewServiceAccounts(client, saPrefixes, Options{Observer: NewServiceAccountMetrics(reg)})
	fakemeta.Start(t, c)
	gauge := func() int {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "irsa_webhook_service_accounts_cached" {
				return int(f.GetMetric()[0].GetGauge().GetValue())
			}
		}
		t.Fatal("no irsa_webhook_service_accounts_cached metric")
		return 0
	}
	if got := gauge(); got != 2 {
		t.Errorf("after sync the gauge is %d, want 2", got)
	}

	gvr := serviceAccounts
	if err := client.Tracker().Create(gvr, sa("other", "c", old, nil), "other", metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return gauge() == 3 && c.Len() == 3 })
	if err := client.Resource(gvr).Namespace("ns").Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return gauge() == 2 && c.Len() == 2 })
	// A delete leaves the others as they were.
	got, err := c.Get(context.Background(), "ns", "b")
	if err != nil || !got.Found || got.Annotations[saPrefix+"/role-arn"] != "arn" {
		t.Errorf("ns/b after a delete: %+v, %v", got, err)
	}
}

// With ReturnMemoryAfterSync the cache is synced only once the memory is
// returned; it still syncs.
func TestReturnMemoryAfterSync(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "a", old, nil))
	gets := fakemeta.CountGets(client, "serviceaccounts", nil, nil)
	c := NewServiceAccounts(client, saPrefixes, Options{ReturnMemoryAfterSync: true})
	fakemeta.Start(t, c)
	if got, err := c.Get(context.Background(), "ns", "a"); err != nil || !got.Found || gets.Load() != 0 {
		t.Errorf("got %+v, %v after %d GETs; want found from the cache", got, err, gets.Load())
	}
}

// The project's own keys are kept beside the prefix's, and nothing else.
func TestAlsoPrefixesAreKept(t *testing.T) {
	client := fakemeta.NewClient(t, sa("ns", "app", old, map[string]string{
		saPrefix + "/role-arn": "arn", "irsa-webhook.io/region": "eu-central-1", "irsa-webhook.iox/y": "z", "other.io/x": "y",
	}))
	c := NewServiceAccounts(client, []string{saPrefix, "irsa-webhook.io"}, Options{})
	fakemeta.Start(t, c)

	got, err := c.Get(context.Background(), "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Found: true, Annotations: map[string]string{saPrefix + "/role-arn": "arn", "irsa-webhook.io/region": "eu-central-1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
