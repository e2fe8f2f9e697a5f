package faults

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// TestWebhookRestartUnderLoad sends SIGTERM to the webhook while a steady
// stream of AdmissionReviews flows, then starts it again. The client opens a
// connection per request and retries only a connection that failed before
// the request was written (refused while the process is down, reset while
// its listener closes), as an API server fails over to another endpoint:
// every request written to the old process must complete (graceful
// shutdown), and the client sees 0 errors overall.
func TestWebhookRestartUnderLoad(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns = "team-restart"
	seedCachedServiceAccounts(t, ctx, s, ns)

	rc := s.ReviewClient(false)
	var phase atomic.Value
	phase.Store(phaseBefore)
	counts := newTally()
	var retries atomic.Int64
	stopLoad := runLoad(ctx, 4, func(ctx context.Context, w, seq int) {
		pod := appPod(fmt.Sprintf("p-%d-%d", w, seq), fmt.Sprintf("cached-%d", seq%cachedSAs))
		p0 := phase.Load().(string)
		res := rc.SendRetrying(ctx, ns, pod)
		p1 := phase.Load().(string)
		if ctx.Err() != nil {
			return
		}
		p := p0
		if p0 != p1 {
			// Started against the old process and answered later: in
			// flight (or retried) across the restart.
			p = phaseTransition
		}
		retries.Add(int64(res.Retries))
		if res.Retries > 0 {
			counts.add(p+"/retried", "")
		}
		v, why := harness.Judge(pod, ns, res, harness.ExampleRoleARN)
		counts.add(p+"/"+string(v), why)
	})
	waitCounts(t, ctx, counts, 50, phaseBefore+"/*")
	phase.Store(phaseStopping)
	t.Log("sending SIGTERM to the webhook")
	if err := s.Webhook.Process.Stop(); err != nil {
		t.Fatal(err)
	}
	phase.Store(phaseOutage)
	if err := s.Webhook.Start(ctx); err != nil {
		t.Fatal(err)
	}
	phase.Store(phaseAfter)
	waitCounts(t, ctx, counts, 50, phaseAfter+"/*")
	stopLoad()

	counts.log(t, "admission requests (phase/verdict; retried counts requests that retried a refused connection)")
	t.Logf("connection retries in all: %d", retries.Load())
	if n := counts.sum("*/" + string(harness.Broken)); n > 0 {
		t.Errorf("%d requests failed across the restart, want 0", n)
	}
	for _, v := range []harness.Verdict{harness.AllowedBare, harness.DeniedLookup} {
		if n := counts.sum("*/" + string(v)); n > 0 {
			t.Errorf("%d requests were %s across the restart, want every pod injected", n, v)
		}
	}
	if retries.Load() == 0 {
		t.Error("no request met the restart (0 connection retries): the fault was not exercised")
	}
	checkNoPanic(t, s.Webhook.Process)
}
