package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Phases of a fault, as the load generator labels its requests. A request
// that started in one phase and ended in another is a "transition".
const (
	phaseBefore = "before"
	// phaseStopping: the part is shutting down; it may or may not answer.
	phaseStopping   = "stopping"
	phaseOutage     = "outage"
	phaseAfter      = "after"
	phaseTransition = "transition"
)

const (
	cachedServiceAccounts = "irsa_webhook_service_accounts_cached"
	// cachedSAs is how many annotated ServiceAccounts the load spreads
	// over; cached-0 is kept out of the load for the resync check.
	cachedSAs = 8
	// minPerPhase is how many requests of each kind every phase must see.
	minPerPhase = 20
	newRoleARN  = "arn:aws:iam::111122223333:role/irsa-e2e-after-outage"
)

// TestAPIServerOutage stops kube-apiserver (and, separately, etcd) for
// IRSA_FAULTS_OUTAGE under steady admission load sent straight to the
// webhook, as another API server replica would send it:
//   - a Pod whose ServiceAccount is in the webhook's cache is injected
//     before, during and after the outage;
//   - a Pod whose ServiceAccount the webhook does not know is denied during
//     the outage with a message naming the lookup that failed, never
//     admitted without credentials;
//   - /readyz is ready before, ready while serving from the cache during
//     the outage, not ready for a webhook that starts during the outage
//     (it has no cache to serve from; 500, controller-runtime's code), and ready again after recovery;
//   - after recovery the cache follows the API server again: an annotation
//     changed after the outage reaches the next admission;
//   - nothing panics.
func TestAPIServerOutage(t *testing.T) {
	for _, target := range []string{"kube-apiserver", "etcd"} {
		t.Run(target, func(t *testing.T) { testOutage(t, target) })
	}
}

func testOutage(t *testing.T, target string) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns = "team-outage"
	seedCachedServiceAccounts(t, ctx, s, ns)

	rc := s.ReviewClient(true)
	var phase atomic.Value
	phase.Store(phaseBefore)
	counts := newTally()
	load := func(ctx context.Context, w, seq int) {
		kind, sa, role := "cached", fmt.Sprintf("cached-%d", 1+seq%(cachedSAs-1)), harness.ExampleRoleARN
		if (w+seq)%2 == 1 {
			// A name never created: the webhook cannot have it cached.
			kind, sa, role = "unknown", fmt.Sprintf("unknown-%d-%d-%d", time.Now().UnixNano()%1e6, w, seq), ""
		}
		pod := appPod(fmt.Sprintf("p-%d-%d", w, seq), sa)
		p0 := phase.Load().(string)
		res := rc.Send(ctx, ns, pod)
		p1 := phase.Load().(string)
		if ctx.Err() != nil {
			return // stopped by the test mid-request: not a result
		}
		p := p0
		if p0 != p1 || p0 == phaseStopping {
			p = phaseTransition
		}
		v, why := harness.Judge(pod, ns, res, role)
		counts.add(p+"/"+kind+"/"+string(v), why)
	}
	readyz := newTally()

	stopLoad := runLoad(ctx, 4, load)
	waitCounts(t, ctx, counts, minPerPhase, phaseBefore+"/cached/*", phaseBefore+"/unknown/*")
	readyz.add(phaseBefore+"/"+probe(ctx, s.Webhook.HealthURL+"/readyz"), "")

	t.Logf("stopping %s for %s", target, outageDuration)
	outageStart := time.Now()
	stopTarget := s.APIServer.Stop
	if target == "etcd" {
		stopTarget = s.Etcd.Stop
	}
	phase.Store(phaseStopping)
	if err := stopTarget(); err != nil {
		t.Fatal(err)
	}
	phase.Store(phaseOutage)
	// The outage lasts its set time and at least until every kind of
	// request was answered minPerPhase times in it; /readyz is probed
	// throughout.
	if err := harness.WaitFor(ctx, outageDuration+2*time.Minute, "the outage to run its course", func(ctx context.Context) error {
		readyz.add(phaseOutage+"/"+probe(ctx, s.Webhook.HealthURL+"/readyz"), "")
		if d := time.Since(outageStart); d < outageDuration {
			return fmt.Errorf("down for %s of %s", d.Round(time.Second), outageDuration)
		}
		for _, k := range []string{"cached", "unknown"} {
			if n := counts.sum(phaseOutage + "/" + k + "/*"); n < minPerPhase {
				return fmt.Errorf("%d %s requests in the outage", n, k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stopLoad()

	if target == "kube-apiserver" {
		restartedDuringOutage(t, ctx, s, ns, readyz)
	}

	t.Logf("starting %s again after %s", target, time.Since(outageStart).Round(time.Second))
	if target == "etcd" {
		if err := s.Etcd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.APIServer.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	} else if err := s.APIServer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Webhook.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	readyz.add(phaseAfter+"/"+probe(ctx, s.Webhook.HealthURL+"/readyz"), "")
	checkResync(t, ctx, s, rc, ns)

	phase.Store(phaseAfter)
	stopLoad = runLoad(ctx, 4, load)
	waitCounts(t, ctx, counts, minPerPhase, phaseAfter+"/cached/*", phaseAfter+"/unknown/*")
	stopLoad()

	counts.log(t, "admission requests (phase/serviceAccount/verdict)")
	readyz.log(t, "webhook /readyz probes (phase/status)")

	for _, p := range []string{phaseBefore, phaseOutage, phaseTransition, phaseAfter} {
		if n := counts.sum(p + "/*/" + string(harness.Broken)); n > 0 {
			t.Errorf("%s: %d requests got a broken answer (no response, an error, a bad patch, or a denial without the lookup message)", p, n)
		}
		for _, v := range []harness.Verdict{harness.AllowedBare, harness.DeniedLookup} {
			if n := counts.get(p + "/cached/" + string(v)); n > 0 {
				t.Errorf("%s: %d pods with a cached annotated ServiceAccount were %s, want every one injected", p, n, v)
			}
		}
	}
	if n := counts.get(phaseOutage + "/unknown/" + string(harness.AllowedBare)); n > 0 {
		t.Errorf("outage: %d pods whose ServiceAccount could not be looked up were admitted without credentials, want denied", n)
	}
	for _, p := range []string{phaseBefore, phaseAfter} {
		// The API server answers: the ServiceAccount does not exist, so the
		// pod asks for nothing and is admitted as it is.
		if n := counts.get(p + "/unknown/" + string(harness.DeniedLookup)); n > 0 {
			t.Errorf("%s: %d pods were denied for a failed lookup while the API server was up", p, n)
		}
	}
	if n := readyz.sum(phaseOutage+"/*") - readyz.get(phaseOutage+"/200"); n > 0 {
		t.Errorf("webhook /readyz failed %d times during the outage, want ready: it serves every cached ServiceAccount", n)
	}
	for _, p := range []string{phaseBefore, phaseAfter} {
		if readyz.get(p+"/200") != 1 {
			t.Errorf("webhook /readyz was not ready %s the outage", p)
		}
	}
	checkNoPanic(t, s.Webhook.Process)
}

// restartedDuringOutage restarts the webhook while the API server is down:
// it comes up alive but not ready (its cache cannot sync), and denies a
// Pod even for a ServiceAccount the previous process had cached, since it
// cannot know the annotation: never admits without credentials.
func restartedDuringOutage(t *testing.T, ctx context.Context, s *harness.Stack, ns string, readyz *tally) {
	t.Helper()
	if err := s.Webhook.Process.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Webhook.Process.Start(); err != nil {
		t.Fatal(err)
	}
	rc := s.ReviewClient(false)
	pod := appPod("restarted", "cached-1")
	var res harness.ReviewResult
	if err := harness.WaitFor(ctx, time.Minute, "the restarted webhook to answer", func(ctx context.Context) error {
		if err := httpStatus(ctx, s.Webhook.HealthURL+"/healthz", http.StatusOK); err != nil {
			return err
		}
		res = rc.Send(ctx, ns, pod)
		return res.Err
	}); err != nil {
		t.Fatal(err)
	}
	if v, why := harness.Judge(pod, ns, res, harness.ExampleRoleARN); v != harness.DeniedLookup {
		t.Errorf("webhook restarted during the outage answered a pod of cached-1 with %s (%s), want %s", v, why, harness.DeniedLookup)
	}
	status := probe(ctx, s.Webhook.HealthURL+"/readyz")
	readyz.add("restarted-during-outage/"+status, "")
	// controller-runtime answers a failed check with 500.
	if status != "500" {
		t.Errorf("webhook restarted during the outage: /readyz %s, want 500 (its cache cannot sync)", status)
	}
}

// checkResync changes cached-0's role after recovery and waits for the
// webhook to inject the new one: only a working watch brings it (an
// annotated ServiceAccount is answered from the cache), so this proves the
// cache follows the API server again. A ServiceAccount created after the
// recovery then gets a Pod through the API server, injected.
func checkResync(t *testing.T, ctx context.Context, s *harness.Stack, rc *harness.ReviewClient, ns string) {
	t.Helper()
	c := s.APIServer.Client
	sa, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "cached-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.Annotations[roleKey] = newRoleARN
	if _, err := c.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := appPod("resync", "cached-0")
	if err := harness.WaitFor(ctx, time.Minute, "the webhook's cache to see cached-0's new role", func(ctx context.Context) error {
		if v, why := harness.Judge(pod, ns, rc.Send(ctx, ns, pod), newRoleARN); v != harness.Injected {
			return fmt.Errorf("%s: %s", v, why)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, "after-outage", map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
		t.Fatal(err)
	}
	created, err := c.CoreV1().Pods(ns).Create(ctx, appPod("after-outage", "after-outage"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod after the outage: %v", err)
	}
	if !harness.HasTokenVolume(created) {
		t.Error("pod created through the API server after the outage was not injected")
	}
}

func waitCached(t *testing.T, ctx context.Context, s *harness.Stack, want float64) {
	t.Helper()
	if err := harness.WaitFor(ctx, time.Minute, "the webhook to cache the ServiceAccounts", func(ctx context.Context) error {
		n, err := s.Webhook.Metric(ctx, cachedServiceAccounts)
		if err == nil && n < want {
			err = fmt.Errorf("%s is %v, want %v", cachedServiceAccounts, n, want)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// probe GETs url and returns the status code, or "error" when there was no
// answer.
func probe(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "error"
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Sprint(resp.StatusCode)
}

func httpStatus(ctx context.Context, url string, want int) error {
	if got := probe(ctx, url); got != fmt.Sprint(want) {
		return fmt.Errorf("GET %s: %s, want %d", url, got, want)
	}
	return nil
}

// seedCachedServiceAccounts creates cachedSAs annotated ServiceAccounts
// cached-0... in ns and waits until the webhook has cached them all.
func seedCachedServiceAccounts(t *testing.T, ctx context.Context, s *harness.Stack, ns string) {
	t.Helper()
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	before, err := s.Webhook.Metric(ctx, cachedServiceAccounts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cachedSAs {
		if err := harness.CreateServiceAccount(ctx, c, ns, fmt.Sprintf("cached-%d", i), map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
			t.Fatal(err)
		}
	}
	waitCached(t, ctx, s, before+cachedSAs)
}
