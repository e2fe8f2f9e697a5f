package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// The flood: floodReviews direct reviews for made-up namespaces and
// ServiceAccounts, offered at floodPerSecond from floodWorkers connections.
// floodRate and floodBurst are the webhook's --live-lookup-rate and
// --live-lookup-burst, well below what the flood asks for.
const (
	floodReviews   = 2000
	floodPerSecond = 200
	floodWorkers   = 256
	floodRate      = 20
	floodBurst     = 20
	floodRace      = 40
)

// TestLookupFloodDoesNotDenyRealPods sends floodReviews direct reviews
// (over TLS, as any Pod that can reach the webhook could) naming random
// namespaces and ServiceAccounts, so every one misses the cache; meanwhile
// floodRace annotated ServiceAccounts are created, each followed at once by
// a Pod through the real API server (the cache race). Every real Pod is
// injected; every flood review is answered (allowed without credentials, or
// denied because its lookup could not be made in time) and none is
// injected; the webhook's live GETs stay within its rate.
func TestLookupFloodDoesNotDenyRealPods(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{
		fmt.Sprintf("--live-lookup-rate=%d", floodRate), fmt.Sprintf("--live-lookup-burst=%d", floodBurst),
		// One second per admission keeps the flood's concurrency (rate x
		// bound) within floodWorkers.
		"--service-account-lookup-timeout=1s",
	}})
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns = "team-flood"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	lookupsBefore, err := s.Webhook.Metric(ctx, "irsa_webhook_service_account_live_lookups_total")
	if err != nil {
		t.Fatal(err)
	}

	rc := s.ReviewClient(true)
	rc.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = floodWorkers
	flood := newTally()
	start := time.Now()
	floodCtx, stopFlood := context.WithTimeout(ctx, 2*time.Minute)
	defer stopFlood()
	jobs := make(chan int)
	var workers sync.WaitGroup
	for range floodWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range jobs {
				namespace, sa := "flood-"+randomName(), "sa-"+randomName()
				pod := appPod(fmt.Sprintf("flood-%d", i), sa)
				res := rc.Send(floodCtx, namespace, pod)
				verdict, why := harness.Judge(pod, namespace, res, "")
				flood.add(string(verdict), why)
			}
		}()
	}
	offered := make(chan struct{})
	go func() {
		defer close(offered)
		defer close(jobs)
		tick := time.NewTicker(time.Second / floodPerSecond)
		defer tick.Stop()
		for i := range floodReviews {
			select {
			case <-tick.C:
			case <-floodCtx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-floodCtx.Done():
				return
			}
		}
	}()

	// The race starts once the flood holds the lookups.
	if err := harness.WaitFor(ctx, time.Minute, "the flood to make lookups wait", func(ctx context.Context) error {
		if v, err := s.Webhook.Metric(ctx, "irsa_webhook_service_account_lookup_waits_total"); err != nil || v == 0 {
			return fmt.Errorf("%v lookups waited (%v)", v, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	race := newTally()
	var racers sync.WaitGroup
	raceJobs := make(chan int)
	for range 4 {
		racers.Add(1)
		go func() {
			defer racers.Done()
			for i := range raceJobs {
				sa := fmt.Sprintf("real-%d", i)
				if err := harness.CreateServiceAccount(ctx, c, ns, sa, map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
					race.add("error", err.Error())
					continue
				}
				pod, err := c.CoreV1().Pods(ns).Create(ctx, appPod(sa, sa), metav1.CreateOptions{})
				switch {
				case err != nil:
					race.add("error", err.Error())
				case !harness.HasTokenVolume(pod):
					race.add("not-injected", sa)
				default:
					race.add("injected", "")
				}
			}
		}()
	}
	for i := range floodRace {
		raceJobs <- i
	}
	close(raceJobs)
	racers.Wait()
	raceDone := time.Since(start)
	floodWasOn := true
	select {
	case <-offered:
		floodWasOn = false
	default:
	}
	<-offered
	workers.Wait()
	elapsed := time.Since(start)

	lookupsAfter, err := s.Webhook.Metric(ctx, "irsa_webhook_service_account_live_lookups_total")
	if err != nil {
		t.Fatal(err)
	}
	lookups := lookupsAfter - lookupsBefore
	bound := floodBurst + floodRate*math.Ceil(elapsed.Seconds())
	flood.log(t, "flood of made-up names (verdict)")
	race.log(t, "pods created right after their ServiceAccount during the flood")
	t.Logf("race done %.1fs into the flood (flood still offered: %t); flood done after %.1fs; %v live GETs, bound %v",
		raceDone.Seconds(), floodWasOn, elapsed.Seconds(), lookups, bound)
	for _, m := range []string{
		"irsa_webhook_service_account_cache_misses_total",
		"irsa_webhook_service_account_lookup_waits_total",
		"irsa_webhook_service_account_live_lookup_failures_total",
		"irsa_webhook_service_account_not_found_hits_total",
	} {
		v, err := s.Webhook.Metric(ctx, m)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s %v", m, v)
	}

	if got := race.get("injected"); got != floodRace {
		t.Errorf("%d of %d real pods injected during the flood, want all", got, floodRace)
	}
	if got := flood.get(string(harness.Injected)) + flood.get(string(harness.Broken)); got != 0 {
		t.Errorf("%d flood reviews injected or broken, want 0", got)
	}
	if got := flood.get(string(harness.AllowedBare)) + flood.get(string(harness.DeniedLookup)); got != floodReviews {
		t.Errorf("%d of %d flood reviews answered", got, floodReviews)
	}
	if flood.get(string(harness.DeniedLookup)) == 0 {
		t.Error("no flood review was denied for want of a lookup: the flood did not exceed the rate, and tests nothing")
	}
	if lookups > bound {
		t.Errorf("%v live GETs in %.1fs, above the rate's bound %v", lookups, elapsed.Seconds(), bound)
	}
	checkNoPanic(t, s.Webhook.Process)
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
