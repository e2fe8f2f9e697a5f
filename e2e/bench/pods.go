package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// PodCreates is the latency of Pod creates through the API server.
type PodCreates struct {
	Webhook        bool
	Count          int
	P50, P99, Mean time.Duration
	// Injected counts the stored Pods that carry the token volume.
	Injected int
}

// CreatePods creates n Pods one after another (each create waits for the
// last) in namespace, running as serviceAccount, and measures each
// create's round trip.
func CreatePods(ctx context.Context, c kubernetes.Interface, namespace, serviceAccount string, n int, webhook bool) (PodCreates, error) {
	res := PodCreates{Webhook: webhook, Count: n}
	lat := make([]time.Duration, 0, n)
	var total time.Duration
	for range n {
		pod := TypicalPod(namespace, serviceAccount)
		start := time.Now()
		got, err := c.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
		d := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("create pod in %s: %w", namespace, err)
		}
		if harness.HasTokenVolume(got) {
			res.Injected++
		}
		lat = append(lat, d)
		total += d
	}
	slices.Sort(lat)
	res.P50, res.P99 = quantile(lat, 0.5), quantile(lat, 0.99)
	res.Mean = total / time.Duration(n)
	return res, nil
}

// WaitWebhookCalled waits until a dry-run Pod in namespace comes back
// injected (want true) or not injected (want false): the API server has
// picked up the registration or its removal.
func WaitWebhookCalled(ctx context.Context, c kubernetes.Interface, namespace, serviceAccount string, want bool) error {
	return harness.WaitFor(ctx, 60*time.Second, fmt.Sprintf("webhook called = %t", want), func(ctx context.Context) error {
		got, err := c.CoreV1().Pods(namespace).Create(ctx, TypicalPod(namespace, serviceAccount), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if harness.HasTokenVolume(got) != want {
			return fmt.Errorf("dry-run pod injected = %t", !want)
		}
		return nil
	})
}
