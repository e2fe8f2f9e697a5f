package node

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// keys are the annotation keys under the prefix the harness runs with.
var keys = identity.Keys{Prefix: identity.DefaultPrefix}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// testContext bounds one test's API calls and waits.
func testContext(t *testing.T) context.Context {
	ctx, cancel := contextWithTimeout(10 * time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// workloadNamespace makes ns with an annotated ServiceAccount sa that
// MinIO lets read the bucket, and the CA ConfigMap the workload trusts.
func workloadNamespace(t *testing.T, ctx context.Context, s *harness.Stack, ns, sa string, annotations map[string]string) {
	t.Helper()
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	a := map[string]string{keys.Key(identity.RoleARN): harness.ExampleRoleARN}
	for k, v := range annotations {
		a[k] = v
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, sa, a); err != nil {
		t.Fatal(err)
	}
	if err := s.MinIO.AllowServiceAccount(ctx, ns, sa, harness.Bucket); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCAConfigMap(ctx, ns); err != nil {
		t.Fatal(err)
	}
}

// deploy creates the Deployment in ns.
func deploy(t *testing.T, ctx context.Context, s *harness.Stack, ns, name, sa string, every time.Duration, user *int64) {
	t.Helper()
	d := s.Node.Workload(name, sa, every, user)
	if _, err := s.APIServer.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
}
