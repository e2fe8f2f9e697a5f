package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/doctor"
)

// TestHelmTestDoctorOnRealAPIServer runs what "helm test" runs, the test
// Pod's doctor command, as a process with the token of the Pod's
// ServiceAccount, against the chart installed on a real API server: the
// hook's RBAC is enough for every check that reads the cluster. With no
// node there is no Service routing and no cert-manager, so only the
// caBundle check fails, and for that reason (the issuer is the harness's,
// reached with its CA).
func TestHelmTestDoctorOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; run without -short")
	}
	s := harness.StartForTest(t, binaries(t), harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := s.APIServer.Client
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhookConfigName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	installCertManagerCRDs(t, ctx, s.APIServer.Admin)
	if err := harness.EnsureNamespace(ctx, admin, namespace); err != nil {
		t.Fatal(err)
	}
	var install, hooks []object
	var pod *corev1.Pod
	for _, o := range objects(t, variantNamed(t, "chart/defaults")) {
		switch p, isPod := o.obj.(*corev1.Pod); {
		case isPod:
			pod = p
		case o.isTestHook():
			hooks = append(hooks, o)
		default:
			install = append(install, o)
		}
	}
	apply(t, ctx, s.APIServer.Admin, install, false)
	apply(t, ctx, s.APIServer.Admin, hooks, false)
	if t.Failed() || pod == nil {
		t.FailNow()
	}

	kubeconfig, _ := tokenKubeconfig(t, ctx, s, pod.Namespace, pod.Spec.ServiceAccountName)
	args := append(slices.Clone(pod.Spec.Containers[0].Args),
		"--kubeconfig="+kubeconfig, "--issuer="+s.Discovery.Issuer, "--ca-file="+s.PKI.CAFile, "--output=json")
	cmd := exec.CommandContext(ctx, s.Binaries.IrsaWebhook, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run() // non-zero: the caBundle check fails
	var report doctor.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &report); jerr != nil {
		t.Fatalf("doctor %v: %v (run: %v)\n%s%s", args, jerr, err, stdout.Bytes(), stderr.Bytes())
	}
	status := map[string]doctor.Check{}
	for _, c := range report.Checks {
		status[c.ID] = c
		if strings.Contains(strings.ToLower(c.Message), "forbidden") {
			t.Errorf("check %s was refused its reads: %s", c.ID, c.Message)
		}
	}
	for _, id := range []string{doctor.CheckServiceAccount, doctor.CheckRoleARN, doctor.CheckWebhookConfiguration, doctor.CheckTokenRequest,
		doctor.CheckTokenIssuer, doctor.CheckTokenLifetime, doctor.CheckDiscoveryDocument, doctor.CheckDiscoveryIssuer, doctor.CheckJWKS, doctor.CheckTokenSignature} {
		if c := status[id]; c.Status != doctor.StatusPass {
			t.Errorf("check %s: %s %s", id, c.Status, c.Message)
		}
	}
	if c := status[doctor.CheckWebhookCABundle]; c.Status != doctor.StatusFail || !strings.Contains(c.Message, "empty caBundle") {
		t.Errorf("check %s: %s %q, want the failure of an empty caBundle (no cainjector here)", doctor.CheckWebhookCABundle, c.Status, c.Message)
	}
	if err == nil {
		t.Error("doctor exited 0 with a failed check")
	}
}
