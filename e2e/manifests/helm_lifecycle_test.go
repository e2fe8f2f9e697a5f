package manifests_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// TestHelmLifecycleOnRealAPIServer installs, upgrades and uninstalls the
// chart with helm against a real kube-apiserver (no node: the objects, not
// their Pods). A bad value changes nothing; an upgrade applies the new
// values without ever removing the webhook configuration (which would let
// Pods start without credentials during a fail-closed upgrade); uninstall
// leaves none of the chart's cluster-scoped objects behind.
func TestHelmLifecycleOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; run without -short")
	}
	s := harness.StartForTest(t, binaries(t), harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := s.APIServer.Client
	// The harness registered its own webhook under the chart's name.
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhookConfigName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	installCertManagerCRDs(t, ctx, s.APIServer.Admin)
	kube := []string{"--kubeconfig", s.APIServer.AdminKubeconfig, "--namespace", namespace}
	run := func(args ...string) (string, error) {
		out, err := helm(t, append(args, kube...)...)
		return string(out), err
	}
	getConf := func() (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
		return admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	}

	// A typo fails at install, before anything reaches the cluster.
	if out, err := run("install", "irsa-webhook", chartDir, "--create-namespace", "--set", "webhook.failurePolicy=fail"); err == nil {
		t.Fatalf("install with failurePolicy=fail succeeded:\n%s", out)
	} else if !strings.Contains(err.Error(), "failurePolicy") {
		t.Errorf("install error does not name the value: %v", err)
	}
	if _, err := getConf(); !apierrors.IsNotFound(err) {
		t.Fatalf("after a refused install, the webhook configuration: %v, want NotFound", err)
	}

	if out, err := run("install", "irsa-webhook", chartDir, "--create-namespace", "--set", "discovery.issuer="+s.Discovery.Issuer); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	conf, err := getConf()
	if err != nil {
		t.Fatalf("after install: %v", err)
	}
	if got := ptr.Deref(conf.Webhooks[0].FailurePolicy, ""); got != admissionregistrationv1.Fail {
		t.Errorf("installed failurePolicy %s, want Fail", got)
	}
	for _, name := range []string{"irsa-webhook", "irsa-discovery"} {
		if _, err := admin.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("deployment %s after install: %v", name, err)
		}
	}

	// Upgrade with changed values, watching the webhook configuration.
	w, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + webhookConfigName, ResourceVersion: conf.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if out, err := run("upgrade", "irsa-webhook", chartDir, "--reuse-values",
		"--set", "webhook.failurePolicy=Ignore", "--set", "webhook.replicas=3", "--set", "discovery.enabled=false",
		"--set", "webhook.certificate.source=self-signed"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	after, err := getConf()
	if err != nil {
		t.Fatalf("after upgrade: %v", err)
	}
	// Everything up to the upgrade's last change has been seen: no DELETED.
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed")
			}
			if ev.Type == watch.Deleted {
				t.Fatal("the upgrade deleted the webhook configuration")
			}
			if c, ok := ev.Object.(*admissionregistrationv1.MutatingWebhookConfiguration); ok && c.ResourceVersion == after.ResourceVersion {
				seen = true
			}
		case <-deadline:
			t.Fatal("the upgrade's change of the webhook configuration never arrived on the watch")
		}
	}
	if after.UID != conf.UID {
		t.Error("the upgrade replaced the webhook configuration")
	}
	if got := ptr.Deref(after.Webhooks[0].FailurePolicy, ""); got != admissionregistrationv1.Ignore {
		t.Errorf("upgraded failurePolicy %s, want Ignore", got)
	}
	if _, ok := after.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Error("the upgrade to self-signed left cert-manager's injection annotation")
	}
	if d, err := admin.AppsV1().Deployments(namespace).Get(ctx, "irsa-webhook", metav1.GetOptions{}); err != nil || ptr.Deref(d.Spec.Replicas, 0) != 3 {
		t.Errorf("webhook deployment after upgrade: %v, err %v; want 3 replicas", d.Spec.Replicas, err)
	}
	if _, err := admin.AppsV1().Deployments(namespace).Get(ctx, "irsa-discovery", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("discovery deployment after discovery.enabled=false: %v, want NotFound", err)
	}
	if _, err := admin.CoreV1().Secrets(namespace).Get(ctx, "irsa-webhook-self-signed-tls", metav1.GetOptions{}); err != nil {
		t.Errorf("the self-signed Secret after the upgrade: %v", err)
	}

	if out, err := run("uninstall", "irsa-webhook"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := getConf(); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall, the webhook configuration: %v, want NotFound", err)
	}
	roles, err := admin.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=irsa-webhook"})
	if err != nil {
		t.Fatal(err)
	}
	bindings, err := admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=irsa-webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if len(roles.Items)+len(bindings.Items) != 0 {
		t.Errorf("after uninstall: %d ClusterRoles and %d ClusterRoleBindings of the chart remain", len(roles.Items), len(bindings.Items))
	}
	deps, err := admin.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 0 {
		t.Errorf("after uninstall: %d Deployments remain in %s", len(deps.Items), namespace)
	}
}
