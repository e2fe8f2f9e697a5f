package scenarios

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// otherRoleARN is a role outside the patterns the restricted namespaces
// allow.
const otherRoleARN = "arn:aws:iam::111122223333:role/cluster-admin"

// policyNamespace creates namespace name with the allowed-role-arns
// annotation set to patterns, and in it ServiceAccount "app" asking for
// harness.ExampleRoleARN and "admin" asking for otherRoleARN.
func policyNamespace(t *testing.T, ctx context.Context, s *harness.Stack, name string, patterns *string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if patterns != nil {
		ns.Annotations = map[string]string{identity.AllowedRoleARNs: *patterns}
	}
	if _, err := s.APIServer.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	for sa, arn := range map[string]string{"app": harness.ExampleRoleARN, "admin": otherRoleARN} {
		if err := harness.CreateServiceAccount(ctx, s.APIServer.Client, name, sa, map[string]string{keys.Key(identity.RoleARN): arn}); err != nil {
			t.Fatal(err)
		}
	}
}

func policyPod(sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-"},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
}

func roleOf(pod *corev1.Pod) string {
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "AWS_ROLE_ARN" {
			return e.Value
		}
	}
	return ""
}

// TestScenarioNamespaceRolePolicy: a namespace's
// irsa-webhook.io/allowed-role-arns annotation decides which roles its
// ServiceAccounts get, through the real API server.
func TestScenarioNamespaceRolePolicy(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		s := harness.StartForTest(t, bins, harness.Options{})
		ctx := testContext(t)
		c := s.APIServer.Client
		allowed := "arn:aws:iam::111122223333:role/irsa-*"
		policyNamespace(t, ctx, s, "restricted", &allowed)
		policyNamespace(t, ctx, s, "open", nil)
		if err := s.MinIO.AllowServiceAccount(ctx, "restricted", "app", harness.Bucket); err != nil {
			t.Fatal(err)
		}

		// An allowed role is injected and its credentials work.
		stored := createPod(t, ctx, s, "restricted", policyPod("app"))
		checkInjected(t, stored, "app")
		wantObject(t, readObjectAs(t, ctx, s, stored, "app"))

		// A role outside the patterns: refused, with a message naming the
		// namespace, the annotation and the role, but not the patterns
		// (any caller of the webhook could read them); nothing is stored.
		_, err := c.CoreV1().Pods("restricted").Create(ctx, policyPod("admin"), metav1.CreateOptions{})
		if err == nil {
			t.Fatal("pod with a role outside the namespace policy was admitted")
		}
		for _, want := range []string{"restricted", identity.AllowedRoleARNs, otherRoleARN} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not mention %q", err, want)
			}
		}
		if strings.Contains(err.Error(), allowed) {
			t.Errorf("refusal %q quotes the allowed patterns", err)
		}
		pods, err := c.CoreV1().Pods("restricted").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Spec.ServiceAccountName == "admin" {
				t.Errorf("refused pod %s was stored", p.Name)
			}
		}

		// No annotation: no restriction.
		if got := roleOf(createPod(t, ctx, s, "open", policyPod("admin"))); got != otherRoleARN {
			t.Errorf("pod in a namespace without policy got role %q, want %q", got, otherRoleARN)
		}

		// The cluster admin widens the policy; the webhook follows.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, identity.AllowedRoleARNs, allowed+", "+otherRoleARN)
		if _, err := c.CoreV1().Namespaces().Patch(ctx, "restricted", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		var admitted *corev1.Pod
		if err := harness.WaitFor(ctx, 30*time.Second, "pod admitted under the widened policy", func(ctx context.Context) error {
			p, err := c.CoreV1().Pods("restricted").Create(ctx, policyPod("admin"), metav1.CreateOptions{})
			admitted = p
			return err
		}); err != nil {
			t.Fatalf("pod still refused after the policy allowed its role: %v", err)
		}
		if got := roleOf(admitted); got != otherRoleARN {
			t.Errorf("pod admitted after the policy change has role %q, want %q", got, otherRoleARN)
		}

		// A namespace created with an empty policy a moment before its pod
		// (the informer may not have it yet): no role is allowed.
		empty := ""
		policyNamespace(t, ctx, s, "fresh", &empty)
		if _, err := c.CoreV1().Pods("fresh").Create(ctx, policyPod("app"), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "allows no role") {
			t.Errorf("pod in a namespace whose policy allows no role: %v, want refused (allows no role)", err)
		}
	})

	t.Run("warn", func(t *testing.T) {
		s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{"--role-policy-action=warn"}})
		ctx := testContext(t)
		allowed := "arn:aws:iam::111122223333:role/irsa-*"
		policyNamespace(t, ctx, s, "restricted", &allowed)

		warnings := &warningRecorder{}
		cfg := rest.CopyConfig(s.APIServer.Admin)
		cfg.WarningHandler = warnings
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		created, err := c.CoreV1().Pods("restricted").Create(ctx, policyPod("admin"), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("warn mode refused the pod: %v", err)
		}
		checkUntouched(t, created)
		got := warnings.all()
		if !strings.Contains(got, identity.AllowedRoleARNs) || !strings.Contains(got, "without AWS credentials") {
			t.Errorf("warnings %q do not name the policy and say the pod has no credentials", got)
		}
		// An allowed role is still injected.
		checkInjected(t, createPod(t, ctx, s, "restricted", policyPod("app")), "app")
	})
}

// warningRecorder keeps the admission warnings the API server relays.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningRecorder) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}
