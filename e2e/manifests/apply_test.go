package manifests_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/selfsigned"
)

const fieldManager = "irsa-webhook-install"

// apply server-side applies objs with strict field validation, which for
// cert-manager's kinds checks them against cert-manager's own CRD schemas.
func apply(t *testing.T, ctx context.Context, cfg *rest.Config, objs []object, dryRun bool) {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.gvk.GroupKind(), o.gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", o.kind, o.name, err)
		}
		body, err := yaml.YAMLToJSON(o.raw)
		if err != nil {
			t.Fatalf("%s %s: %v", o.kind, o.name, err)
		}
		acc, _ := meta.Accessor(o.obj)
		var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			r = dyn.Resource(m.Resource).Namespace(acc.GetNamespace())
		}
		if _, err := r.Patch(ctx, acc.GetName(), types.ApplyPatchType, body, opts); err != nil {
			t.Errorf("server-side apply %s %s (dryRun=%v): %v", o.kind, o.name, dryRun, err)
		}
	}
}

// installCertManagerCRDs applies the Certificate and Issuer CRDs shipped in
// the cert-manager module the tests decode with, and waits until the API
// server serves them.
func installCertManagerCRDs(t *testing.T, ctx context.Context, cfg *rest.Config) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locate the cert-manager module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	var crds []object
	for _, f := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("cert-manager CRD: %v", err)
		}
		crds = append(crds, decode(t, f, data)...)
	}
	apply(t, ctx, cfg, crds, false)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cert-manager CRDs served", func() error {
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
		for _, kind := range []string{"Certificate", "Issuer"} {
			if _, err := mapper.RESTMapping(schema.GroupKind{Group: "cert-manager.io", Kind: kind}, "v1"); err != nil {
				return err
			}
		}
		return nil
	})
}

// tokenKubeconfig writes a kubeconfig that authenticates as ServiceAccount
// namespace/name with a token from the TokenRequest API.
func tokenKubeconfig(t *testing.T, ctx context.Context, s *harness.Stack, namespace, name string) (string, kubernetes.Interface) {
	t.Helper()
	tr, err := s.APIServer.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", namespace, name, err)
	}
	kc, err := clientcmd.LoadFromFile(s.APIServer.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range kc.AuthInfos {
		a.ClientCertificate, a.ClientKey, a.ClientCertificateData, a.ClientKeyData = "", "", nil, nil
		a.Token = tr.Status.Token
	}
	path := filepath.Join(s.Dir, "kubeconfig-"+namespace+"-"+name)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return path, kubernetes.NewForConfigOrDie(cfg)
}

// freePort is a port for a binary started here with a port flag: one
// outside the kernel's ephemeral range and claimed for this test process
// (harness.FreePort), so neither an outgoing connection nor another test
// process can take it between now and the binary's listen.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run starts the irsa-webhook binary with a Deployment container's args
// followed by overrides (a later flag wins) and stops it at cleanup.
func run(t *testing.T, s *harness.Stack, logName string, c *corev1.Container, overrides ...string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(s.LogDir, logName+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.Binaries.IrsaWebhook, append(slices.Clone(c.Args), overrides...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", logName, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("%s log:\n%s", logName, tail(string(b), 30))
			}
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// eventually polls cond every 100ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func ready(base string) func() error {
	return func() error {
		code, body, err := httpGet(base + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", code, body)
		}
		return nil
	}
}

// servedCert is the leaf certificate a TLS server at addr presents.
func servedCert(addr string) ([]byte, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reading which certificate is served
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw, nil
}

func expectForbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: got %v, want 403 Forbidden", what, err)
	}
}

// TestManifestsOnRealAPIServer applies every manifest to a real
// kube-apiserver, runs the webhook (self-signed overlay) and the discovery
// server as the processes their Deployments describe, with exactly the
// rights of their ServiceAccounts, and checks that this works, that
// anything more is refused, and that the API server calls the webhook
// through the caBundle the webhook wrote, also after a forced rotation.
func TestManifestsOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; run without -short")
	}
	s := harness.StartForTest(t, binaries(t), harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := s.APIServer.Client

	// The harness registered its own webhook under the same name; the
	// manifests' registration replaces it.
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhookConfigName, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the harness's webhook registration: %v", err)
	}

	// Every object of every variant of the chart passes the API server's
	// validation (dry run; cert-manager's kinds against its CRDs), then the self-signed
	// install is applied for real.
	installCertManagerCRDs(t, ctx, s.APIServer.Admin)
	if err := harness.EnsureNamespace(ctx, admin, namespace); err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		// The ServiceMonitor CRD is prometheus-operator's, which this tier
		// does not install; those objects are decoded strictly with its
		// Go types instead.
		// A Pod (helm test's) is admitted only if its ServiceAccount
		// exists, even in a dry run: those are applied for real first.
		var objs, serviceAccounts []object
		for _, o := range objects(t, v) {
			if o.gvk.Group != "monitoring.coreos.com" {
				objs = append(objs, o)
			}
			if o.kind == "ServiceAccount" {
				serviceAccounts = append(serviceAccounts, o)
			}
		}
		apply(t, ctx, s.APIServer.Admin, serviceAccounts, false)
		apply(t, ctx, s.APIServer.Admin, objs, true)
	}
	if t.Failed() {
		t.FailNow()
	}
	if err := harness.EnsureNamespace(ctx, admin, "app"); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, admin, "app", "app", map[string]string{"eks.amazonaws.com/role-arn": harness.ExampleRoleARN}); err != nil {
		t.Fatal(err)
	}
	mutated := func(name string) error {
		pod, err := admin.CoreV1().Pods("app").Create(ctx, harness.SimplePod(name, "app"), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !harness.HasTokenVolume(pod) {
			return fmt.Errorf("pod %s was admitted without the token volume", name)
		}
		return nil
	}
	pointAt := func(addr string, caBundle []byte) {
		t.Helper()
		conf, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conf.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://" + addr + "/mutate"), CABundle: caBundle}
		if _, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, conf, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("point the registration at %s: %v", addr, err)
		}
	}

	// The default install, with the rights of the base alone: the webhook
	// reads its certificate from --cert-dir (here the harness's, standing in
	// for cert-manager's) and needs nothing but ServiceAccounts and Namespaces.
	{
		objs := objects(t, variantNamed(t, installDir))
		apply(t, ctx, s.APIServer.Admin, objs, false)
		d := get[*appsv1.Deployment](t, objs, webhookDeployment)
		c := container(t, d, "webhook")
		kubeconfig, asWebhook := tokenKubeconfig(t, ctx, s, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
		addr, health := "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
		_, port, _ := net.SplitHostPort(addr)
		run(t, s, "manifest-webhook-cert-dir", c,
			"--kubeconfig="+kubeconfig, "--cert-dir="+s.WebhookCertDir, "--bind-address=127.0.0.1", "--port="+port,
			"--health-probe-bind-address="+health, "--metrics-bind-address=127.0.0.1:"+strconv.Itoa(freePort(t)), "--log-format=console")
		eventually(t, 60*time.Second, "webhook (default install) ready", ready("http://"+health))
		pointAt(addr, s.PKI.CAPEM)
		eventually(t, 30*time.Second, "pod mutated by the webhook with the default install's rights", func() error {
			return mutated("default-install-" + strconv.FormatInt(time.Now().UnixNano(), 36))
		})
		certSecret := d.Spec.Template.Spec.Volumes[0].Secret.SecretName
		_, err := asWebhook.CoreV1().Secrets(d.Namespace).Get(ctx, certSecret, metav1.GetOptions{})
		expectForbidden(t, "webhook (default install) reads its own certificate Secret through the API", err)
		_, err = asWebhook.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
		expectForbidden(t, "webhook (default install) reads its webhook configuration", err)
	}

	// Then the install without cert-manager, applied over it. The
	// registration this test pointed at 127.0.0.1 (with another field
	// manager) goes first, or the apply would add a service next to its url.
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhookConfigName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := objects(t, variantNamed(t, "deploy/overlays/self-signed"))
	apply(t, ctx, s.APIServer.Admin, objs, false)
	if t.Failed() {
		t.FailNow()
	}

	// This harness has no Service routing (no kube-proxy, no Pods), so the
	// registration is pointed at the process directly; everything else,
	// including the caBundle, is as the manifests and the webhook make it.
	port := freePort(t)
	webhookAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pointAt(webhookAddr, nil) // the webhook writes the caBundle

	// The webhook, as the Deployment runs it, with the ServiceAccount's token.
	d := get[*appsv1.Deployment](t, objs, webhookDeployment)
	c := container(t, d, "webhook")
	flags := parseWebhookArgs(t, c)
	kubeconfig, asWebhook := tokenKubeconfig(t, ctx, s, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
	health := "127.0.0.1:" + strconv.Itoa(freePort(t))
	run(t, s, "manifest-webhook", c,
		"--kubeconfig="+kubeconfig, "--bind-address=127.0.0.1", "--port="+strconv.Itoa(port),
		"--health-probe-bind-address="+health, "--metrics-bind-address=127.0.0.1:"+strconv.Itoa(freePort(t)),
		"--self-signed-extra-san=127.0.0.1", "--self-signed-resync-interval=1s", "--log-format=console")
	eventually(t, 60*time.Second, "webhook ready", ready("http://"+health))

	secretName := flags.selfSigned.SecretNamespace + "/" + flags.selfSigned.SecretName
	caBundleIsSecretCA := func() error {
		sec, err := admin.CoreV1().Secrets(flags.selfSigned.SecretNamespace).Get(ctx, flags.selfSigned.SecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conf, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(sec.Data[selfsigned.CAKey]) == 0 || string(conf.Webhooks[0].ClientConfig.CABundle) != string(sec.Data[selfsigned.CAKey]) {
			return fmt.Errorf("caBundle (%d bytes) is not ca.crt of %s (%d bytes)", len(conf.Webhooks[0].ClientConfig.CABundle), secretName, len(sec.Data[selfsigned.CAKey]))
		}
		return nil
	}
	eventually(t, 30*time.Second, "caBundle written by the webhook", caBundleIsSecretCA)

	// The API server calls the webhook through that caBundle.
	if err := mutated("before-rotation"); err != nil {
		t.Fatalf("create pod through the self-signed webhook: %v", err)
	}

	// Rights: what the webhook needs works...
	if _, err := asWebhook.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("webhook lists ServiceAccounts: %v", err)
	}
	if _, err := asWebhook.CoreV1().Secrets(flags.selfSigned.SecretNamespace).Get(ctx, flags.selfSigned.SecretName, metav1.GetOptions{}); err != nil {
		t.Errorf("webhook reads its own Secret: %v", err)
	}
	if _, err := asWebhook.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("webhook lists Namespaces (the role policy): %v", err)
	}
	// ...and anything more is refused.
	_, err := asWebhook.CoreV1().Secrets(flags.selfSigned.SecretNamespace).List(ctx, metav1.ListOptions{})
	expectForbidden(t, "webhook lists Secrets in its namespace", err)
	_, err = asWebhook.CoreV1().Secrets("kube-system").Get(ctx, flags.selfSigned.SecretName, metav1.GetOptions{})
	expectForbidden(t, "webhook reads a Secret of the same name elsewhere", err)
	_, err = asWebhook.CoreV1().Secrets(flags.selfSigned.SecretNamespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{})
	expectForbidden(t, "webhook creates a Secret", err)
	_, err = asWebhook.CoreV1().ServiceAccounts("app").Patch(ctx, "app", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	expectForbidden(t, "webhook patches a ServiceAccount", err)
	_, err = asWebhook.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "someone-elses", metav1.GetOptions{})
	expectForbidden(t, "webhook reads another webhook configuration", err)
	_, err = asWebhook.CoreV1().Pods("app").List(ctx, metav1.ListOptions{})
	expectForbidden(t, "webhook lists Pods", err)
	_, err = asWebhook.CoreV1().Namespaces().Patch(ctx, "app", types.MergePatchType, []byte(`{"metadata":{"annotations":{"irsa-webhook.io/allowed-role-arns":"arn:aws*:iam::*:role/*"}}}`), metav1.PatchOptions{})
	expectForbidden(t, "webhook widens a namespace role policy", err)

	// Forced rotation: the admin empties the Secret. The webhook writes a new
	// CA and certificate, the caBundle follows, and the API server still
	// reaches the webhook.
	before, err := servedCert(webhookAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets(flags.selfSigned.SecretNamespace).Patch(ctx, flags.selfSigned.SecretName, types.JSONPatchType,
		[]byte(`[{"op":"remove","path":"/data"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("empty %s: %v", secretName, err)
	}
	eventually(t, 30*time.Second, "new certificate served after the forced rotation", func() error {
		after, err := servedCert(webhookAddr)
		if err != nil {
			return err
		}
		if string(after) == string(before) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	eventually(t, 30*time.Second, "caBundle follows the rotation", caBundleIsSecretCA)
	if err := mutated("after-rotation"); err != nil {
		t.Fatalf("create pod after the forced rotation: %v", err)
	}

	// What the registration's selectors and matchConditions keep away from
	// the webhook is admitted even when the webhook is down (failurePolicy
	// Fail); everything else is refused.
	pointAt("127.0.0.1:"+strconv.Itoa(freePort(t)), nil) // nothing listens there
	eventually(t, 30*time.Second, "pod creation refused while the webhook is unreachable", func() error {
		if err := mutated("webhook-down-" + strconv.FormatInt(time.Now().UnixNano(), 36)); err == nil {
			return errors.New("a pod was created with the webhook unreachable")
		}
		return nil
	})
	create := func(ns string, pod *corev1.Pod) error {
		_, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}
	optedOut := harness.SimplePod("opted-out", "app")
	optedOut.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
	if err := create("app", optedOut); err != nil {
		t.Errorf("pod labelled eks.amazonaws.com/skip-pod-identity-webhook, webhook down: %v", err)
	}
	mirror := harness.SimplePod("mirror", "")
	mirror.Annotations = map[string]string{"kubernetes.io/config.mirror": "static"}
	mirror.Spec.NodeName = "node-1"
	if err := create("app", mirror); err != nil {
		t.Errorf("mirror pod, webhook down: %v", err)
	}
	ownPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "own", Labels: d.Spec.Template.Labels}, Spec: *d.Spec.Template.Spec.DeepCopy()}
	if err := create(d.Namespace, ownPod); err != nil {
		// Also proves the Deployment's Pod passes the API server's PodSecurity
		// admission at the namespace's "restricted" level.
		t.Errorf("webhook's own pod in %s, webhook down: %v", d.Namespace, err)
	}
	if err := harness.EnsureNamespace(ctx, admin, "ignored"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Patch(ctx, "ignored", types.MergePatchType, []byte(`{"metadata":{"labels":{"irsa-webhook.io/ignore":"true"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, admin, "ignored", "default", nil); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := create("ignored", harness.SimplePod("ignored", "default")); err != nil {
		t.Errorf("pod in a namespace labelled irsa-webhook.io/ignore, webhook down: %v", err)
	}

	// The discovery server, as its Deployment runs it, with its
	// ServiceAccount's token: --from-apiserver works with only
	// system:service-account-issuer-discovery, and nothing more is allowed.
	dd := get[*appsv1.Deployment](t, objs, discoveryDeploy)
	dc := container(t, dd, "discovery")
	dKubeconfig, asDiscovery := tokenKubeconfig(t, ctx, s, dd.Namespace, dd.Spec.Template.Spec.ServiceAccountName)
	dPort, dHealth := freePort(t), "127.0.0.1:"+strconv.Itoa(freePort(t))
	run(t, s, "manifest-discovery", dc,
		"--issuer="+s.Discovery.Issuer, "--kubeconfig="+dKubeconfig, "--bind-address=127.0.0.1", "--port="+strconv.Itoa(dPort),
		"--health-probe-bind-address="+dHealth, "--metrics-bind-address=127.0.0.1:"+strconv.Itoa(freePort(t)), "--log-format=console")
	eventually(t, 60*time.Second, "discovery ready", ready("http://"+dHealth))
	if code, body, err := httpGet("http://" + dHealth + dc.ReadinessProbe.HTTPGet.Path); err != nil || code != http.StatusOK {
		t.Errorf("discovery readiness probe %s: %d %s %v", dc.ReadinessProbe.HTTPGet.Path, code, body, err)
	}
	code, body, err := httpGet("http://127.0.0.1:" + strconv.Itoa(dPort) + "/openid/v1/jwks")
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"keys"`) {
		t.Errorf("GET /openid/v1/jwks from the discovery server: %d %s %v", code, body, err)
	}
	_, err = asDiscovery.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
	expectForbidden(t, "discovery lists ServiceAccounts", err)
	_, err = asDiscovery.CoreV1().Secrets(dd.Namespace).List(ctx, metav1.ListOptions{})
	expectForbidden(t, "discovery lists Secrets", err)
}
