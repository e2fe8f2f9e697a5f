package scenarios

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// repetitions of the cache race; each is a new ServiceAccount the webhook's
// informer cannot have seen yet.
const repetitions = 60

// cachedServiceAccounts is the webhook's gauge of ServiceAccounts in its
// watch cache.
const cachedServiceAccounts = "irsa_webhook_service_accounts_cached"

// Scenario 4: a ServiceAccount created (or annotated) immediately before its
// Pod, with no wait in between, is injected every time: a cache miss or a
// stale cache entry must never admit the Pod without credentials.
func TestScenario4ServiceAccountJustBeforePod(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns = "team-d"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	roleKey := keys.Key(identity.RoleARN)

	t.Run("created annotated", func(t *testing.T) {
		missed := 0
		for i := range repetitions {
			sa := fmt.Sprintf("created-%d", i)
			if err := harness.CreateServiceAccount(ctx, c, ns, sa, map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
				t.Fatal(err)
			}
			pod, err := c.CoreV1().Pods(ns).Create(ctx, harness.SimplePod(sa, sa), metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create pod %d: %v", i, err)
			}
			if !harness.HasTokenVolume(pod) {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("%d of %d pods created right after their annotated ServiceAccount were admitted without credentials", missed, repetitions)
		}
	})

	t.Run("annotated after creation", func(t *testing.T) {
		missed := 0
		for i := range repetitions {
			sa := fmt.Sprintf("annotated-%d", i)
			before, err := s.Webhook.Metric(ctx, cachedServiceAccounts)
			if err != nil {
				t.Fatal(err)
			}
			if err := harness.CreateServiceAccount(ctx, c, ns, sa, nil); err != nil {
				t.Fatal(err)
			}
			// Let the webhook's cache hold the ServiceAccount without the
			// annotation, so the Pod meets a stale entry rather than a miss.
			if err := harness.WaitFor(ctx, 30*time.Second, "the webhook to cache "+sa, func(ctx context.Context) error {
				n, err := s.Webhook.Metric(ctx, cachedServiceAccounts)
				if err == nil && n <= before {
					err = fmt.Errorf("%s is %v, want more than %v", cachedServiceAccounts, n, before)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			got, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got.Annotations = map[string]string{roleKey: harness.ExampleRoleARN}
			if _, err := c.CoreV1().ServiceAccounts(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			pod, err := c.CoreV1().Pods(ns).Create(ctx, harness.SimplePod(sa, sa), metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create pod %d: %v", i, err)
			}
			if !harness.HasTokenVolume(pod) {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("%d of %d pods created right after their ServiceAccount was annotated were admitted without credentials", missed, repetitions)
		}
	})
}
