package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

const (
	namespace = "soak"
	// steadySAs are the annotated ServiceAccounts the steady load uses.
	steadySAs = 10
)

var roleKey = identity.Keys{Prefix: identity.DefaultPrefix}.Key(identity.RoleARN)

// sample is one point of the time series.
type sample struct {
	At         time.Duration `json:"atSeconds"`
	RSSBytes   float64       `json:"rssBytes"`
	Goroutines float64       `json:"goroutines"`
	Requests   int           `json:"requests"`
	Errors     int           `json:"errors"`
	P50        time.Duration `json:"p50Nanos"`
	P99        time.Duration `json:"p99Nanos"`
}

// recorder collects request outcomes and latencies between samples.
type recorder struct {
	mu          sync.Mutex
	latencies   []time.Duration
	requests    int
	errors      int
	notInjected int
	firstErrors []string
	all         []time.Duration
}

func (r *recorder) record(d time.Duration, err error, injected bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	switch {
	case err != nil:
		r.errors++
		if len(r.firstErrors) < 5 {
			r.firstErrors = append(r.firstErrors, err.Error())
		}
	case !injected:
		r.notInjected++
		if len(r.firstErrors) < 5 {
			r.firstErrors = append(r.firstErrors, "pod admitted without credentials")
		}
	default:
		r.latencies = append(r.latencies, d)
	}
}

// take returns the window since the last call and starts a new one.
func (r *recorder) take() (lat []time.Duration, requests, errors int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat, requests, errors = r.latencies, r.requests, r.errors+r.notInjected
	r.all = append(r.all, lat...)
	r.latencies, r.requests = nil, 0
	r.errors, r.notInjected = 0, 0
	return lat, requests, errors
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func soak(ctx context.Context, cfg config, s *harness.Stack, out io.Writer) (*result, error) {
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, namespace); err != nil {
		return nil, err
	}
	for i := range steadySAs {
		if err := harness.CreateServiceAccount(ctx, c, namespace, fmt.Sprintf("app-%d", i), map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
			return nil, err
		}
	}
	certs, err := harness.AtomicCertDir(s.WebhookCertDir)
	if err != nil {
		return nil, err
	}
	res := &result{Config: cfg.String(), Started: time.Now().UTC()}
	rec := &recorder{}
	start := time.Now()
	loadCtx, stopLoad := context.WithDeadline(ctx, start.Add(cfg.duration))
	defer stopLoad()
	var wg sync.WaitGroup

	for w := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; loadCtx.Err() == nil; seq++ {
				pod := harness.SimplePod(fmt.Sprintf("soak-%d-%d", w, seq), fmt.Sprintf("app-%d", seq%steadySAs))
				t0 := time.Now()
				// A request started before the deadline runs to its end.
				got, err := dryRunPod(ctx, s, pod)
				if ctx.Err() != nil {
					return
				}
				rec.record(time.Since(t0), err, err == nil && harness.HasTokenVolume(got))
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		churn(ctx, loadCtx, cfg.churn, s, res)
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-loadCtx.Done():
			return
		case <-time.After(cfg.rotateAt):
		}
		res.Rotation = rotate(ctx, s, certs)
		fmt.Fprintf(out, "soak: certificate rotated at %s: %s\n", time.Since(start).Round(time.Second), res.Rotation)
	}()

	tick := time.NewTicker(cfg.sample)
	defer tick.Stop()
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
		case <-tick.C:
			// The outer context: the last tick may meet the load's deadline.
			smp := takeSample(ctx, s, rec, time.Since(start))
			res.Samples = append(res.Samples, smp)
			fmt.Fprintf(out, "soak: %6s  rss %6.1f MiB  goroutines %4.0f  requests %5d  errors %d  p99 %s\n",
				smp.At.Round(time.Second), smp.RSSBytes/(1<<20), smp.Goroutines, smp.Requests, smp.Errors, smp.P99.Round(100*time.Microsecond))
		}
	}
	wg.Wait()
	// The requests since the last sample count too.
	_, n, e := rec.take()
	res.summarize(rec, n, e)
	return res, nil
}

func dryRunPod(ctx context.Context, s *harness.Stack, pod *corev1.Pod) (*corev1.Pod, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.APIServer.Client.CoreV1().Pods(namespace).Create(rctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

func takeSample(ctx context.Context, s *harness.Stack, rec *recorder, at time.Duration) sample {
	lat, n, e := rec.take()
	slices.Sort(lat)
	smp := sample{At: at, Requests: n, Errors: e, P50: percentile(lat, 0.50), P99: percentile(lat, 0.99)}
	smp.RSSBytes, _ = s.Webhook.Metric(ctx, "process_resident_memory_bytes")
	smp.Goroutines, _ = s.Webhook.Metric(ctx, "go_goroutines")
	return smp
}

// churn, every interval until loadCtx ends: creates an annotated
// ServiceAccount and at once a Pod for it (which must be injected),
// re-annotates the previous one, and deletes the one before that. A round
// runs with ctx, so one started before the deadline completes.
func churn(ctx, loadCtx context.Context, interval time.Duration, s *harness.Stack, res *result) {
	c := s.APIServer.Client.CoreV1().ServiceAccounts(namespace)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-loadCtx.Done():
			return
		case <-tick.C:
		}
		name := fmt.Sprintf("churn-%d", n)
		err := harness.CreateServiceAccount(ctx, s.APIServer.Client, namespace, name, map[string]string{roleKey: harness.ExampleRoleARN})
		if err == nil {
			var pod *corev1.Pod
			pod, err = dryRunPod(ctx, s, harness.SimplePod(name, name))
			if err == nil && !harness.HasTokenVolume(pod) {
				err = fmt.Errorf("pod for new service account %s admitted without credentials", name)
			}
		}
		if err == nil && n >= 1 {
			var sa *corev1.ServiceAccount
			if sa, err = c.Get(ctx, fmt.Sprintf("churn-%d", n-1), metav1.GetOptions{}); err == nil {
				sa.Annotations[roleKey] = harness.ExampleRoleARN + "-v2"
				_, err = c.Update(ctx, sa, metav1.UpdateOptions{})
			}
		}
		if err == nil && n >= 2 {
			err = c.Delete(ctx, fmt.Sprintf("churn-%d", n-2), metav1.DeleteOptions{})
		}
		if ctx.Err() != nil {
			return
		}
		res.churned(err)
	}
}

// rotate replaces the serving certificate and waits until it is served.
func rotate(ctx context.Context, s *harness.Stack, certs *harness.CertDir) string {
	files, cert, err := s.NewWebhookCert()
	if err != nil {
		return "failed: " + err.Error()
	}
	if err := certs.Update(files); err != nil {
		return "failed: " + err.Error()
	}
	start := time.Now()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Webhook.Port)
	err = harness.WaitFor(ctx, 30*time.Second, "the new certificate to be served", func(ctx context.Context) error {
		got, err := s.ServedCertificate(ctx, addr)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.Raw, cert.Raw) {
			return fmt.Errorf("old certificate still served")
		}
		return nil
	})
	if err != nil {
		return "failed: " + err.Error()
	}
	return fmt.Sprintf("new certificate served after %s", time.Since(start).Round(10*time.Millisecond))
}
