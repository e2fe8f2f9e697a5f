package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// serviceAccountsPerNamespace spreads the scale test's ServiceAccounts
// over namespaces of this size.
const serviceAccountsPerNamespace = 1000

// CreateServiceAccounts creates ServiceAccounts number from (inclusive) to
// to (exclusive) with workers concurrent creates; every even-numbered one
// carries annotations. Namespaces are created as needed. It is bounded by
// ctx.
func CreateServiceAccounts(ctx context.Context, c kubernetes.Interface, from, to, workers int, annotations map[string]string) error {
	for ns := from / serviceAccountsPerNamespace; ns*serviceAccountsPerNamespace < to; ns++ {
		if err := harness.EnsureNamespace(ctx, c, scaleNamespace(ns*serviceAccountsPerNamespace)); err != nil {
			return err
		}
	}
	var next atomic.Int64
	next.Store(int64(from))
	g, ctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return nil
				}
				sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNamespace(i), Name: fmt.Sprintf("sa-%06d", i)}}
				if i%2 == 0 {
					sa.Annotations = annotations
				}
				_, err := c.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					return fmt.Errorf("create service account %s/%s: %w", sa.Namespace, sa.Name, err)
				}
			}
		})
	}
	return g.Wait()
}

func scaleNamespace(i int) string { return fmt.Sprintf("scale-%03d", i/serviceAccountsPerNamespace) }

// ScalePoint is the webhook's cost with a number of ServiceAccounts in the
// API server.
type ScalePoint struct {
	ServiceAccounts int // in the scale namespaces, half annotated
	Cached          float64
	CreateTime      time.Duration // to create this point's new ServiceAccounts
	TimeToReady     time.Duration // process start to /readyz (cache synced)
	RSS             float64       // process_resident_memory_bytes after sync
	// PeakRSS is the process's peak resident set size from its start to
	// its readiness and the read of its memory (VmHWM): the initial list.
	PeakRSS   float64
	HeapInuse float64 // go_memstats_heap_inuse_bytes after sync
	// APIServerCPU is kube-apiserver's CPU seconds from the webhook's start
	// to its readiness: serving the initial LIST and opening the WATCH.
	APIServerCPU float64
	APIServerRSS float64
}

// MeasureSync restarts the webhook and measures its way to ready: the time
// from process start to /readyz, its memory after sync as its own /metrics
// report it, and the API server's CPU time meanwhile. want is the number of
// ServiceAccounts the cache must hold once synced (at least).
func MeasureSync(ctx context.Context, s *harness.Stack, want int) (ScalePoint, error) {
	p := ScalePoint{}
	if err := s.Webhook.Process.Stop(); err != nil {
		return p, err
	}
	apiPID := s.APIServer.Process.PID()
	cpu0, err := cpuSeconds(apiPID)
	if err != nil {
		return p, err
	}
	start := time.Now()
	if err := s.Webhook.Process.Start(); err != nil {
		return p, err
	}
	// Poll often: the wait is what is measured. Bounded, and it gives up
	// if the process exits.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if err := ready(ctx, s.Webhook.HealthURL+"/readyz"); err == nil {
			break
		}
		if !s.Webhook.Process.Running() {
			return p, fmt.Errorf("webhook exited before it was ready:\n%s", s.Webhook.Process.LogTail(20))
		}
		if time.Now().After(deadline) {
			return p, errors.New("webhook not ready within 5 minutes")
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.TimeToReady = time.Since(start)
	cpu1, err := cpuSeconds(apiPID)
	if err != nil {
		return p, err
	}
	p.APIServerCPU = cpu1 - cpu0
	if p.APIServerRSS, err = rssBytes(apiPID); err != nil {
		return p, err
	}
	// /readyz waits for the cache's initial list; memory is read once the
	// cached gauge shows it too.
	if err := harness.WaitFor(ctx, 2*time.Minute, "the cached service accounts gauge", func(ctx context.Context) error {
		n, err := s.Webhook.Metric(ctx, "irsa_webhook_service_accounts_cached")
		if err != nil {
			return err
		}
		if p.Cached = n; int(n) < want {
			return fmt.Errorf("%v service accounts cached, want at least %d", n, want)
		}
		return nil
	}); err != nil {
		return p, err
	}
	for name, v := range map[string]*float64{
		"process_resident_memory_bytes": &p.RSS,
		"go_memstats_heap_inuse_bytes":  &p.HeapInuse,
	} {
		if *v, err = s.Webhook.Metric(ctx, name); err != nil {
			return p, err
		}
	}
	if p.PeakRSS, err = peakRSSBytes(s.Webhook.Process.PID()); err != nil {
		return p, err
	}
	return p, nil
}

func ready(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return nil
}
