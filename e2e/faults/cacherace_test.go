package faults

import (
	"fmt"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// raceWorkers create ServiceAccounts and Pods in parallel, so the webhook
// meets many new ServiceAccounts at once.
const raceWorkers = 8

// TestCacheRaceAtScale creates IRSA_FAULTS_CACHE_RACE (500) ServiceAccounts
// annotated, each immediately followed by a Pod through the real API
// server, from several clients at once; then as many created bare and
// annotated just before their Pod (the cache holds a stale copy). Every Pod
// is injected: a cache miss or stale entry never admits a Pod without
// credentials. The webhook's cache counters are reported.
func TestCacheRaceAtScale(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns = "team-race"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	counts := newTally()
	race := func(mode string, i int) {
		sa := fmt.Sprintf("%s-%d", mode, i)
		annotations := map[string]string{roleKey: harness.ExampleRoleARN}
		if mode == "annotated-after" {
			annotations = nil
		}
		if err := harness.CreateServiceAccount(ctx, c, ns, sa, annotations); err != nil {
			counts.add(mode+"/error", err.Error())
			return
		}
		if mode == "annotated-after" {
			got, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
			if err != nil {
				counts.add(mode+"/error", err.Error())
				return
			}
			got.Annotations = map[string]string{roleKey: harness.ExampleRoleARN}
			if _, err := c.CoreV1().ServiceAccounts(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				counts.add(mode+"/error", err.Error())
				return
			}
		}
		pod, err := c.CoreV1().Pods(ns).Create(ctx, appPod(sa, sa), metav1.CreateOptions{})
		switch {
		case err != nil:
			counts.add(mode+"/error", err.Error())
		case !harness.HasTokenVolume(pod):
			counts.add(mode+"/not-injected", sa)
		default:
			counts.add(mode+"/injected", "")
		}
	}
	for _, mode := range []string{"created-annotated", "annotated-after"} {
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range raceWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					race(mode, i)
				}
			}()
		}
		for i := range cacheRaceCount {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}

	counts.log(t, "pods created right after their ServiceAccount (mode/result)")
	for _, m := range []string{
		"irsa_webhook_service_account_cache_misses_total",
		"irsa_webhook_service_account_young_checks_total",
		"irsa_webhook_service_account_live_lookups_total",
		"irsa_webhook_service_account_live_lookup_failures_total",
	} {
		v, err := s.Webhook.Metric(ctx, m)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s %v", m, v)
	}
	for _, mode := range []string{"created-annotated", "annotated-after"} {
		if got := counts.get(mode + "/injected"); got != cacheRaceCount {
			t.Errorf("%s: %d of %d pods injected, want all", mode, got, cacheRaceCount)
		}
	}
	checkNoPanic(t, s.Webhook.Process)
}
