package scenarios

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Scenario 9: with the webhook down and failurePolicy Fail, creating a Pod
// fails with an error that names the webhook, and nothing is stored; once
// the webhook is back the same Pod is created and injected.
func TestScenario9WebhookDownFailsClosed(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa = "team-i", "app"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)
	pods := s.APIServer.Client.CoreV1().Pods(ns)

	if err := s.Webhook.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := pods.Create(ctx, harness.SimplePod("while-down", sa), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("pod created while the webhook was down, want the API server to refuse it (failurePolicy Fail)")
	}
	for _, want := range []string{`failed calling webhook "` + harness.WebhookName + `"`, "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("create error does not say %q: %v", want, err)
		}
	}
	if _, err := pods.Get(ctx, "while-down", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get refused pod: err = %v, want NotFound", err)
	}

	if err := s.Webhook.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stored := createPod(t, ctx, s, ns, harness.SimplePod("while-down", sa))
	checkInjected(t, stored, "app")
	wantObject(t, readObjectAs(t, ctx, s, stored, "app"))
}
