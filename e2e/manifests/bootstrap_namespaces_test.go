package manifests_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// TestWebhookDownStillAdmitsBootstrapNamespaces registers the webhook with
// the shipped registration (deploy/install.yaml's selectors, rules and
// failurePolicy Fail; only the clientConfig points at the harness's webhook
// process, as there is no Service routing), stops the only replica, and
// checks on a real API server that what brings a cluster back can still be
// created: Pods in kube-system (DNS, CNI, kube-proxy), in cert-manager's
// namespace (the serving certificate) and the webhook's own Pods, while a
// Pod in an ordinary namespace is refused (fail closed).
func TestWebhookDownStillAdmitsBootstrapNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; run without -short")
	}
	s := harness.StartForTest(t, binaries(t), harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := s.APIServer.Client

	objs := objects(t, variantNamed(t, installDir))
	shipped := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, webhookConfigName)
	if len(shipped.Webhooks) != 1 || ptr.Deref(shipped.Webhooks[0].FailurePolicy, "") != admissionregistrationv1.Fail {
		t.Fatalf("the default install should register one webhook failing closed: %+v", shipped.Webhooks)
	}
	conf := shipped.DeepCopy()
	conf.Annotations = nil // no cainjector here; the caBundle is set below
	conf.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To(s.Webhook.URL), CABundle: s.PKI.CAPEM}
	// The harness registered its own configuration under the same name.
	existing, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, conf.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf.ResourceVersion = existing.ResourceVersion
	if _, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, conf, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("register the shipped webhook configuration: %v", err)
	}

	// Every namespace gets a ServiceAccount with a role, so the webhook
	// would inject wherever it is called. The webhook's namespace is the
	// shipped one, with its restricted Pod Security labels.
	const ordinary = "team-boot"
	bootstrap := []string{"kube-system", "cert-manager", namespace}
	apply(t, ctx, s.APIServer.Admin, []object{namespaceObject(t, objs, namespace)}, false)
	for _, ns := range append([]string{ordinary}, bootstrap...) {
		if err := harness.EnsureNamespace(ctx, admin, ns); err != nil {
			t.Fatal(err)
		}
		if err := harness.CreateServiceAccount(ctx, admin, ns, "app", map[string]string{"eks.amazonaws.com/role-arn": harness.ExampleRoleARN}); err != nil {
			t.Fatal(err)
		}
	}
	webhookPod := get[*appsv1.Deployment](t, objs, webhookDeployment).Spec.Template
	if err := harness.CreateServiceAccount(ctx, admin, namespace, webhookPod.Spec.ServiceAccountName, nil); err != nil {
		t.Fatal(err)
	}
	unique := func(name string) string { return name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) }
	podIn := func(ns, name string) *corev1.Pod {
		if ns == namespace {
			// The webhook's own Pod, exactly as its Deployment makes it.
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: webhookPod.Labels}, Spec: *webhookPod.Spec.DeepCopy()}
		}
		return harness.SimplePod(name, "app")
	}
	create := func(ns, name string) (*corev1.Pod, error) {
		return admin.CoreV1().Pods(ns).Create(ctx, podIn(ns, name), metav1.CreateOptions{})
	}

	// With the webhook up, the registration is live: an ordinary Pod is
	// injected. Pods in the bootstrap namespaces are not even sent to it.
	eventually(t, 30*time.Second, "ordinary pod injected through the shipped registration", func() error {
		pod, err := create(ordinary, unique("up"))
		if err != nil {
			return err
		}
		if !harness.HasTokenVolume(pod) {
			return fmt.Errorf("pod %s admitted without the token volume", pod.Name)
		}
		return nil
	})
	for _, ns := range bootstrap {
		pod, err := create(ns, "while-up")
		if err != nil {
			t.Errorf("pod in %s, webhook up: %v", ns, err)
			continue
		}
		if harness.HasTokenVolume(pod) {
			t.Errorf("pod in %s was sent to the webhook: it got the token volume", ns)
		}
	}

	// Every replica down (the harness runs one).
	if err := s.Webhook.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = create(ordinary, "while-down")
	if err == nil {
		t.Fatalf("pod in %s created with the webhook down, want it refused (failurePolicy Fail)", ordinary)
	}
	if want := `failed calling webhook "` + shipped.Webhooks[0].Name + `"`; !strings.Contains(err.Error(), want) {
		t.Errorf("create in %s: error does not say %q: %v", ordinary, want, err)
	}
	if _, err := admin.CoreV1().Pods(ordinary).Get(ctx, "while-down", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("refused pod in %s: get err = %v, want NotFound", ordinary, err)
	}
	for _, ns := range bootstrap {
		if _, err := create(ns, "while-down"); err != nil {
			t.Errorf("pod in %s, webhook down: %v", ns, err)
		}
	}
	if t.Failed() {
		return
	}
	// The refusal above was the webhook being down, not this namespace.
	if err := s.Webhook.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if pod, err := create(ordinary, "while-down"); err != nil || !harness.HasTokenVolume(pod) {
		t.Errorf("pod in %s after the webhook came back: %v (injected: %v)", ordinary, err, err == nil && harness.HasTokenVolume(pod))
	}
}

// namespaceObject is the rendered Namespace called name.
func namespaceObject(t *testing.T, objs []object, name string) object {
	t.Helper()
	for _, o := range objs {
		if ns, ok := o.obj.(*corev1.Namespace); ok && ns.Name == name {
			return o
		}
	}
	t.Fatalf("no Namespace %s in the rendered manifests", name)
	return object{}
}
