package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/images"
	"github.com/irsa-webhook/irsa-webhook/pkg/doctor"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// helmRelease is the release name the chart's README installs as.
const helmRelease = "irsa-webhook"

// helmIssuer is the issuer the chart is installed with; the node's API
// server issues tokens for it.
const helmIssuer = "https://oidc.example.com"

// upgradedRegion is what the upgrade sets webhook.awsDefaultRegion to
// (the install leaves it empty).
const upgradedRegion = "eu-west-3"

// upgradedTimeout is what the upgrade sets webhook.timeoutSeconds to (the
// chart's default is 10).
const upgradedTimeout = 8

// helmTimeout bounds one helm command.
const helmTimeout = 3 * time.Minute

// helmRun is one node on which the chart was installed with helm.
type helmRun struct {
	*installed
	bin, chart string
	home       string
	logs       int
}

// helm runs helm against the node's API server, in the release namespace,
// and keeps its output with the stack's logs.
func (h *helmRun) helm(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, helmTimeout)
	defer cancel()
	args = append(args, "--kubeconfig", h.s.APIServer.AdminKubeconfig, "--namespace", installNS)
	var out bytes.Buffer
	cmd := harness.HelmCommand(ctx, h.bin, filepath.Dir(h.chart), h.home, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	h.logs++
	logFile := filepath.Join(h.s.LogDir, fmt.Sprintf("helm-%02d-%s.log", h.logs, args[0]))
	if werr := os.WriteFile(logFile, out.Bytes(), 0o644); werr != nil {
		t.Errorf("keep helm output: %v", werr)
	}
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return out.String(), nil
}

// helmInstall starts a node whose API server issues tokens for
// helmIssuer, and installs charts/irsa-webhook on it with helm: the image
// built from this checkout (imported into the node, never pulled) and
// self-signed certificates, nothing else changed from the chart's
// defaults. It waits for both Deployments and points MinIO at the
// installed discovery server through an Ingress in front of its Service.
func helmInstall(t *testing.T, ctx context.Context) *helmRun {
	t.Helper()
	if unsupported != nil {
		t.Skip(unsupported)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := harness.BuildHelm(ctx, "", os.Stderr)
	if err != nil {
		t.Fatalf("build helm: %v", err)
	}
	repo, tag, ok := strings.Cut(images.WebhookRef, ":")
	if !ok {
		t.Fatalf("image %q has no tag", images.WebhookRef)
	}
	s := harness.StartForTest(t, bins, harness.Options{Node: true, NoWebhook: true, ServiceAccountIssuer: helmIssuer})
	h := &helmRun{
		installed: &installed{s: s, c: s.APIServer.Client, issuer: helmIssuer},
		bin:       bin, chart: filepath.Join(root, "charts", "irsa-webhook"), home: t.TempDir(),
	}
	if _, err := h.helm(t, ctx, "install", helmRelease, h.chart, "--create-namespace",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "webhook.certificate.source=self-signed", "--set", "discovery.issuer="+helmIssuer,
		// The issuer's Ingress has a certificate of the Stack's CA.
		"--set-file", "tests.caBundle="+s.PKI.CAFile,
		// doctor's report, for the test to read.
		"--set", "tests.extraArgs={--output=json}"); err != nil {
		t.Fatal(err)
	}
	h.ingress = exposeInstall(t, ctx, s, helmIssuer)
	return h
}

// The chart as a platform team uses it, on the real node: helm install
// with the locally built image, helm test, helm upgrade under Pod creation
// load, helm uninstall. The subtests share one node and one release and
// run in order (the last one uninstalls it).
func TestHelmChartOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	h := helmInstall(t, ctx)
	for _, st := range []struct {
		name string
		f    func(*testing.T, context.Context, *helmRun)
	}{
		{"installed webhook replicas ready with one CA", func(t *testing.T, ctx context.Context, h *helmRun) {
			testWebhookReplicasOneCA(t, ctx, h.installed)
		}},
		{"installed discovery serves the issuer documents", func(t *testing.T, ctx context.Context, h *helmRun) {
			testDiscoveryThroughService(t, ctx, h.installed)
		}},
		{"workload reads S3 through the installed webhook and discovery", func(t *testing.T, ctx context.Context, h *helmRun) {
			testInstalledWorkload(t, ctx, h.installed)
		}},
		{"helm test runs doctor in the cluster", testHelmTest},
		{"helm upgrade during a burst admits every Pod with credentials", testHelmUpgradeDuringBurst},
		{"deleting webhook pods mid-burst refuses none", testDeleteWebhookPodsRepeatedly},
		{"helm uninstall leaves no webhook configuration", testHelmUninstall},
	} {
		if !t.Run(st.name, func(t *testing.T) { st.f(t, ctx, h) }) {
			// Later subtests build on this one's state.
			t.FailNow()
		}
	}
}

// helmTestPod is the chart's "helm test" Pod.
const helmTestPod = "irsa-webhook-test"

// helm test creates the hook's ServiceAccounts and RBAC, its CA
// ConfigMap and its Pod, which the node runs: irsa-webhook doctor, in the
// cluster, with the hook's own ServiceAccount token. Every check passes:
// the test ServiceAccount and its role, the webhook configuration covering
// tests.namespace, the caBundle verifying the certificate served through
// the webhook's Service (its name from the cluster DNS, its ClusterIP
// through kube-proxy), a token requested with the installed issuer and
// lifetime, and the discovery documents of the public issuer (its name
// from the DNS, its certificate trusted through tests.caBundle) holding
// the key that signed the token. helm test succeeds, and deletes its Pod.
func testHelmTest(t *testing.T, ctx context.Context, h *helmRun) {
	// --logs prints the Pod's log before the hook deletes it.
	out, err := h.helm(t, ctx, "test", helmRelease, "--timeout", "2m", "--logs")
	if err != nil {
		t.Fatal(err)
	}
	var report doctor.Report
	// doctor's report (stdout) within helm's own output.
	start := strings.Index(out, "{\n")
	if start < 0 {
		t.Fatalf("helm test output holds no doctor report:\n%s", out)
	}
	if jerr := json.NewDecoder(strings.NewReader(out[start:])).Decode(&report); jerr != nil {
		t.Fatalf("helm test output holds no doctor report: %v\n%s", jerr, out)
	}
	status := map[string]doctor.Check{}
	for _, c := range report.Checks {
		status[c.ID] = c
		t.Logf("doctor in the helm test pod: %s %s: %s", c.ID, c.Status, c.Message)
		if c.Status != doctor.StatusPass {
			t.Errorf("check %s: %s %s", c.ID, c.Status, c.Message)
		}
	}
	for _, id := range []string{doctor.CheckServiceAccount, doctor.CheckRoleARN, doctor.CheckWebhookConfiguration,
		doctor.CheckWebhookCABundle, doctor.CheckTokenRequest, doctor.CheckTokenIssuer, doctor.CheckTokenLifetime,
		doctor.CheckDiscoveryDocument, doctor.CheckDiscoveryIssuer, doctor.CheckJWKS, doctor.CheckTokenSignature} {
		if _, ok := status[id]; !ok {
			t.Errorf("doctor in the helm test pod did not run check %s", id)
		}
	}
	// hook-succeeded: the Pod is gone once helm test returns.
	if _, err := h.c.CoreV1().Pods(installNS).Get(ctx, helmTestPod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("helm test pod after a passed helm test: %v, want it deleted by its hook policy", err)
	}
}

// helm upgrade with changed values (webhook.awsDefaultRegion, a flag of
// the Deployment, and webhook.timeoutSeconds, a field of the webhook
// configuration) while Pods are created at a steady rate: helm updates
// the objects in place, the Deployment rolls, and every Pod is admitted
// with its credentials; the webhook configuration is modified, never
// deleted (watched throughout), keeps the caBundle the webhook filled,
// and Pods created after the rollout carry the new region.
func testHelmUpgradeDuringBurst(t *testing.T, ctx context.Context, h *helmRun) {
	c := h.c
	const ns, sa = "helm-upgrade", "reader"
	// No region on the ServiceAccount: the webhook's default is what shows.
	workloadNamespace(t, ctx, h.s, ns, sa, nil)
	t.Cleanup(func() { deleteBurst(t, c, ns) })
	before, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("before-upgrade", sa), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := envValue(before, mutate.EnvRegion); !injected(before) || got != "" {
		t.Fatalf("before the upgrade: injected %v, %s %q; want injected, no region", injected(before), mutate.EnvRegion, got)
	}
	conf, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + webhookConfig, ResourceVersion: conf.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		events  []watch.Event
		seenRVs = map[string]bool{}
		closed  = make(chan struct{})
		// Stopping the watch may end it with an ERROR event of its own.
		stopped int
	)
	go func() {
		defer close(closed)
		for ev := range w.ResultChan() {
			mu.Lock()
			events = append(events, ev)
			if o, ok := ev.Object.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
				seenRVs[o.ResourceVersion] = true
			}
			mu.Unlock()
		}
	}()
	old := podNames(webhookPods(t, ctx, c))
	// Two changes: the webhook's flag (a rollout) and the registration's
	// timeout (an update of the webhook configuration itself).
	upgrade := func() error {
		_, err := h.helm(t, ctx, "upgrade", helmRelease, h.chart, "--reuse-values",
			"--set", "webhook.awsDefaultRegion="+upgradedRegion, "--set", fmt.Sprintf("webhook.timeoutSeconds=%d", upgradedTimeout))
		return err
	}
	res := runBurst(ctx, c, ns, sa, 150*time.Millisecond, upgrade, func() bool { return rolledOver(ctx, c, h.s, old) })
	t.Logf("%d pods created, %d with credentials, during helm upgrade", res.created, res.injected)
	for _, f := range res.failures {
		t.Error(f)
	}
	if res.created < burstSize || res.injected != res.created {
		t.Errorf("created %d, injected %d: want every one of at least %d injected", res.created, res.injected, burstSize)
	}
	after, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("webhook configuration after the upgrade: %v", err)
	}
	// Every event up to the upgraded object has arrived: none is DELETED.
	werr := harness.WaitFor(ctx, 30*time.Second, "the upgraded webhook configuration on the watch", func(context.Context) error {
		select {
		case <-closed:
			return errors.New("the watch closed")
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		if !seenRVs[after.ResourceVersion] {
			return fmt.Errorf("resource version %s not seen yet (%d events)", after.ResourceVersion, len(events))
		}
		return nil
	})
	mu.Lock()
	stopped = len(events)
	mu.Unlock()
	w.Stop()
	<-closed
	if werr != nil {
		t.Error(werr)
	}
	for i, ev := range events {
		t.Logf("watch of the webhook configuration during the upgrade: %s", ev.Type)
		switch {
		case ev.Type == watch.Deleted:
			t.Error("the upgrade deleted the webhook configuration")
		case ev.Type == watch.Error && i < stopped:
			t.Errorf("the watch of the webhook configuration failed during the upgrade: %v", apierrors.FromObject(ev.Object))
		case ev.Type == watch.Error:
			t.Logf("the watch ended as it was stopped: %v", apierrors.FromObject(ev.Object))
		}
	}
	if after.UID != conf.UID {
		t.Error("the upgrade replaced the webhook configuration")
	}
	if !caBundleSet(after) || string(after.Webhooks[0].ClientConfig.CABundle) != string(conf.Webhooks[0].ClientConfig.CABundle) {
		t.Error("the upgrade changed or emptied the self-signed caBundle")
	}
	if got := ptr.Deref(after.Webhooks[0].TimeoutSeconds, 0); got != upgradedTimeout {
		t.Errorf("upgraded timeoutSeconds %d, want %d", got, upgradedTimeout)
	}
	// The rollout is done: every replica runs the new flag.
	p, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("after-upgrade", sa), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := envValue(p, mutate.EnvRegion); !injected(p) || got != upgradedRegion {
		t.Errorf("after the upgrade: injected %v, %s %q; want injected with %q", injected(p), mutate.EnvRegion, got, upgradedRegion)
	}
}

func caBundleSet(conf *admissionregistrationv1.MutatingWebhookConfiguration) bool {
	return len(conf.Webhooks) > 0 && len(conf.Webhooks[0].ClientConfig.CABundle) > 0
}

// envValue is name's value in pod's first container, or "".
func envValue(pod *corev1.Pod, name string) string {
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// helm uninstall removes the webhook configuration (and the webhook Pods
// do not bring it back as they stop), and Pods are created again, without
// credentials.
func testHelmUninstall(t *testing.T, ctx context.Context, h *helmRun) {
	c := h.c
	if _, err := h.helm(t, ctx, "uninstall", helmRelease, "--wait", "--timeout", "2m"); err != nil {
		t.Fatal(err)
	}
	// A failed helm test leaves its Pod for inspection (the chart's
	// README says so); the release's own Pods go.
	if err := harness.WaitFor(ctx, rolloutTimeout, "every pod of the release gone", func(ctx context.Context) error {
		pods, err := c.CoreV1().Pods(installNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=irsa-webhook,app.kubernetes.io/component!=test"})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods left, e.g. %s", n, pods.Items[0].Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	confs, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range confs.Items {
		t.Errorf("webhook configuration %s left after helm uninstall", conf.Name)
	}
	for _, d := range []string{webhookDeployment, discoveryName} {
		if _, err := c.AppsV1().Deployments(installNS).Get(ctx, d, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deployment %s after helm uninstall: %v, want NotFound", d, err)
		}
	}
	const ns, sa = "after-helm-uninstall", "reader"
	workloadNamespace(t, ctx, h.s, ns, sa, nil)
	p, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("after-uninstall", sa), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod creation after helm uninstall: %v", err)
	}
	if harness.HasTokenVolume(p) {
		t.Errorf("pod %s injected after helm uninstall", p.Name)
	}
}

// shutdownRounds is how many webhook Pods the shutdown test deletes, one
// after the other, each during its own burst.
const shutdownRounds = 10

// A deleted webhook Pod keeps answering until the API server has stopped
// sending it requests: each of shutdownRounds times, one webhook Pod is
// deleted (default grace period) while Pods are created as fast as one
// per 10 ms, until the deleted Pod is gone; not one creation is refused
// (a webhook that closed its listener on SIGTERM, before the endpoint
// update reached the API server, would refuse the connections sent to it
// meanwhile: failed calling webhook).
func testDeleteWebhookPodsRepeatedly(t *testing.T, ctx context.Context, h *helmRun) {
	c := h.c
	const ns, sa = "helm-shutdown", "reader"
	workloadNamespace(t, ctx, h.s, ns, sa, nil)
	var created, injectedN, refused int
	for round := range shutdownRounds {
		pods := webhookPods(t, ctx, c)
		if len(pods) == 0 {
			t.Fatal("no webhook pod")
		}
		victim := pods[round%len(pods)].Name
		del := func() error { return c.CoreV1().Pods(installNS).Delete(ctx, victim, metav1.DeleteOptions{}) }
		gone := func() bool {
			_, err := c.CoreV1().Pods(installNS).Get(ctx, victim, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}
		res := runBurst(ctx, c, ns, sa, 10*time.Millisecond, del, gone)
		created += res.created
		injectedN += res.injected
		for _, f := range res.failures {
			if strings.Contains(f, "failed calling webhook") {
				refused++
			}
			t.Errorf("round %d (%s deleted): %s", round, victim, f)
		}
		deleteBurst(t, c, ns)
		if err := harness.WaitRollout(ctx, h.s, installNS, webhookDeployment, rolloutTimeout); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d webhook pods deleted: %d pods created, %d with credentials, %d refused (failed calling webhook)",
		shutdownRounds, created, injectedN, refused)
}
