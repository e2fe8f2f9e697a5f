package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/images"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
	"github.com/irsa-webhook/irsa-webhook/pkg/selfsigned"
)

// The installed objects' names, as deploy/base names them.
const (
	installNS          = harness.InstallNamespace
	webhookDeployment  = "irsa-webhook"
	webhookService     = "irsa-webhook"
	webhookConfig      = "irsa-webhook"
	discoveryName      = "irsa-discovery"
	selfSignedSecret   = "irsa-webhook-self-signed-tls"
	webhookServiceName = "irsa-webhook.irsa-system.svc"
)

// Bounds of the install's waits.
const (
	rolloutTimeout = 3 * time.Minute
	burstTimeout   = 4 * time.Minute
)

// burstSize is how many Pods a burst creates at least.
const burstSize = 200

// maxBurstPods bounds a burst's creations. A deleted webhook Pod is gone
// only after its 5 s preStop sleep, its graceful shutdown and the kubelet's
// report, 7 to 10 s, in which the fastest burst (one Pod per 10 ms from 8
// clients) creates 600 to 800 Pods: 3×burstSize cut such rounds short.
const maxBurstPods = 10 * burstSize

// installed is one node with the self-signed install applied and Ready.
type installed struct {
	s       *harness.Stack
	c       kubernetes.Interface
	in      *harness.Install
	issuer  string
	ingress *harness.Ingress
}

// installSelfSigned starts a node whose API server issues tokens for the
// issuer the install's discovery Deployment names, applies
// deploy/overlays/self-signed with only the image changed (to the one
// built from this checkout), waits for both Deployments, and points MinIO
// at the installed discovery server through an Ingress in front of its
// Service.
func installSelfSigned(t *testing.T, ctx context.Context) *installed {
	t.Helper()
	if unsupported != nil {
		t.Skip(unsupported)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Render first: the API server's issuer must be the manifests' own.
	in, err := harness.RenderInstall(root, t.TempDir(), "deploy/overlays/self-signed", images.WebhookRef)
	if err != nil {
		t.Fatal(err)
	}
	issuer := in.ContainerArg(installNS, discoveryName, "issuer")
	if issuer == "" {
		t.Fatalf("the rendered discovery Deployment has no --issuer")
	}
	// Its Stop, in the test's cleanup, fails the test unless the host is
	// as the node tier found it (compared under the node lock).
	s := harness.StartForTest(t, bins, harness.Options{Node: true, NoWebhook: true, ServiceAccountIssuer: issuer})
	// Again in the stack's directory, kept with the logs on failure.
	if in, err = harness.RenderInstall(root, filepath.Join(s.Dir, "install"), in.Overlay, images.WebhookRef); err != nil {
		t.Fatal(err)
	}
	if err := in.Apply(ctx, s); err != nil {
		t.Fatal(err)
	}
	return &installed{s: s, c: s.APIServer.Client, in: in, issuer: issuer, ingress: exposeInstall(t, ctx, s, issuer)}
}

// exposeInstall waits for the installed webhook and discovery Deployments,
// puts an Ingress for the issuer's host in front of the discovery Service,
// and makes it MinIO's OpenID provider.
func exposeInstall(t *testing.T, ctx context.Context, s *harness.Stack, issuer string) *harness.Ingress {
	t.Helper()
	for _, d := range []string{webhookDeployment, discoveryName} {
		if err := harness.WaitRollout(ctx, s, installNS, d, rolloutTimeout); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	ing, err := s.StartIngress(u.Hostname(), installNS, discoveryName, "http")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ing.Close)
	if err := s.MinIO.UseOpenIDProvider(ctx, issuer+"/.well-known/openid-configuration", ing.ProxyURL); err != nil {
		t.Fatal(err)
	}
	return ing
}

// The project's own install, running as Pods on the real node: the
// self-signed overlay, unchanged but for the image, applied through the
// API server; everything after that goes through the installed webhook
// and discovery Pods. The subtests share one node and one install and run
// in order (the last one deletes the install).
func TestInstallSelfSignedOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	ins := installSelfSigned(t, ctx)
	for _, st := range []struct {
		name string
		f    func(*testing.T, context.Context, *installed)
	}{
		{"webhook replicas ready with one CA", testWebhookReplicasOneCA},
		{"discovery serves the issuer documents through its Service", testDiscoveryThroughService},
		{"workload Deployment reads S3 through the installed webhook and discovery", testInstalledWorkload},
		{"kube-system Pod created while both webhook replicas are down", testKubeSystemWhileWebhookDown},
		{"rolling restart during a burst admits every Pod", testRolloutDuringBurst},
		{"deleting a webhook Pod mid-burst loses none", testDeletePodDuringBurst},
		{"delete of the install leaves no webhook configuration", testDeleteInstall},
	} {
		if !t.Run(st.name, func(t *testing.T) { st.f(t, ctx, ins) }) {
			// Later subtests build on this one's state.
			t.FailNow()
		}
	}
}

// webhookPods are the Running webhook Pods, by name.
func webhookPods(t *testing.T, ctx context.Context, c kubernetes.Interface) []corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods(installNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Both replicas are Ready on the node; the Secret the overlay ships empty
// now holds one CA, the webhook configuration's caBundle is exactly that
// CA, and each replica serves, at its Pod address, a certificate for the
// Service's name that the caBundle verifies. The readiness probe gates
// it: every Ready replica answered /readyz, which passes only once the
// certificate is served.
func testWebhookReplicasOneCA(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	sec, err := c.CoreV1().Secrets(installNS).Get(ctx, selfSignedSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caPEM := sec.Data[selfsigned.CAKey]
	pool := x509.NewCertPool()
	if len(caPEM) == 0 || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("secret %s holds no CA (%d bytes)", selfSignedSecret, len(caPEM))
	}
	if n := strings.Count(string(caPEM), "BEGIN CERTIFICATE"); n != 1 {
		t.Errorf("secret %s holds %d CAs, want 1 (the two replicas did not agree)", selfSignedSecret, n)
	}
	conf, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(conf.Webhooks[0].ClientConfig.CABundle); got != string(caPEM) {
		t.Errorf("caBundle is not the Secret's CA:\n%s\nwant\n%s", got, caPEM)
	}
	if svc := conf.Webhooks[0].ClientConfig.Service; svc == nil || svc.Name != webhookService || svc.Namespace != installNS {
		t.Errorf("webhook registered as %+v, want the Service %s/%s", conf.Webhooks[0].ClientConfig, installNS, webhookService)
	}
	pods := webhookPods(t, ctx, c)
	if len(pods) != 2 {
		t.Fatalf("%d webhook pods, want 2", len(pods))
	}
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName != harness.NodeName || !podReady(p) || p.Status.PodIP == "" {
			t.Errorf("webhook pod %s on %q ready=%v ip=%q", p.Name, p.Spec.NodeName, podReady(p), p.Status.PodIP)
			continue
		}
		if got := p.Spec.Containers[0].Image; got != images.WebhookRef {
			t.Errorf("webhook pod %s runs %s, want %s", p.Name, got, images.WebhookRef)
		}
		addr := net.JoinHostPort(p.Status.PodIP, "9443")
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: webhookServiceName})
		if err != nil {
			t.Errorf("webhook pod %s at %s: TLS with the caBundle for %s: %v", p.Name, addr, webhookServiceName, err)
			continue
		}
		conn.Close()
	}
	if t.Failed() {
		return
	}
	// Both are the Service's ready endpoints, where the API server calls.
	eps, err := harness.ReadyEndpoints(ctx, c, installNS, webhookService, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Errorf("service %s has ready endpoints %v, want both replicas", webhookService, eps)
	}
}

// The discovery Deployment serves the issuer's documents: through its
// Service (behind the Ingress, as AWS fetches them) and at each Pod's
// address; the issuer is the manifests' and the API server's, and the keys
// are the API server's own.
func testDiscoveryThroughService(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	proxy, err := url.Parse(ins.ingress.ProxyURL)
	if err != nil {
		t.Fatal(err)
	}
	viaIngress := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: ins.s.PKI.CertPool()},
	}}
	var cfg struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, viaIngress, ins.issuer+"/.well-known/openid-configuration", &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != ins.issuer || cfg.JWKSURI != ins.issuer+"/openid/v1/jwks" {
		t.Errorf("discovery document issuer %q jwks_uri %q, want %q and its /openid/v1/jwks", cfg.Issuer, cfg.JWKSURI, ins.issuer)
	}
	served, err := getRaw(ctx, viaIngress, cfg.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	own, err := c.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameKeys(t, served, own) {
		t.Errorf("served JWKS\n%s\nis not the API server's\n%s", served, own)
	}
	eps, err := harness.ReadyEndpoints(ctx, c, installNS, discoveryName, "http")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Fatalf("service %s has ready endpoints %v, want both replicas", discoveryName, eps)
	}
	direct := &http.Client{Timeout: 10 * time.Second}
	for _, ep := range eps {
		body, err := getRaw(ctx, direct, "http://"+ep+"/openid/v1/jwks")
		if err != nil {
			t.Errorf("discovery pod at %s: %v", ep, err)
			continue
		}
		if !sameKeys(t, body, own) {
			t.Errorf("discovery pod at %s serves\n%s", ep, body)
		}
	}
}

// sameKeys reports whether two JWKS documents hold the same keys.
func sameKeys(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	kids := func(keys []json.RawMessage) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			var v struct {
				Kid string `json:"kid"`
				N   string `json:"n"`
			}
			_ = json.Unmarshal(k, &v)
			m[v.Kid] = v.N
		}
		return m
	}
	xa, ya := kids(x.Keys), kids(y.Keys)
	if len(xa) == 0 || len(xa) != len(ya) {
		return false
	}
	for k, v := range xa {
		if ya[k] != v {
			return false
		}
	}
	return true
}

func getRaw(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, nil
}

func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	body, err := getRaw(ctx, c, u)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// installedWorkloadNamespace makes ns with an annotated ServiceAccount sa
// (with the region, which the install's webhook does not default) that
// MinIO lets read the bucket, and the CA ConfigMap.
func installedWorkloadNamespace(t *testing.T, ctx context.Context, s *harness.Stack, ns, sa string) {
	t.Helper()
	workloadNamespace(t, ctx, s, ns, sa, map[string]string{identity.Region: harness.Region})
}

// The whole flow with nothing run by hand: the installed webhook (a Pod,
// reached by the API server through its Service) injects the workload
// Deployment's Pod, the kubelet writes the token, and the SDK in the
// container exchanges it with MinIO's STS, which verifies it with the keys
// the installed discovery Deployment serves; the object is in the Pod's
// log.
func testInstalledWorkload(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	const ns, sa = "installed-workload", "reader"
	installedWorkloadNamespace(t, ctx, ins.s, ns, sa)
	deploy(t, ctx, ins.s, ns, "s3get", sa, 5*time.Second, ptrTo[int64](1000))
	pod, err := harness.RunningPod(ctx, c, ns, "s3get", podTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !injected(pod) {
		t.Fatalf("pod %s was not injected by the installed webhook", pod.Name)
	}
	log, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, readLine)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, "failed") {
		t.Errorf("a read failed before one succeeded:\n%s", log)
	}
	// The token the SDK sent is the kubelet's, for the install's issuer.
	tok := readTokenIssuer(t, ins.s, pod)
	if tok != ins.issuer {
		t.Errorf("token issuer %q, want %q", tok, ins.issuer)
	}
}

// readTokenIssuer is the iss claim of the token the kubelet wrote for pod.
func readTokenIssuer(t *testing.T, s *harness.Stack, pod *corev1.Pod) string {
	t.Helper()
	raw, err := os.ReadFile(s.Node.TokenFile(pod, mutate.VolumeName, mutate.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	if len(parts) != 3 {
		t.Fatalf("token file holds no JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Iss
}

// injected reports whether every container of pod has the webhook's
// volume and AWS_ROLE_ARN.
func injected(pod *corev1.Pod) bool {
	if !harness.HasTokenVolume(pod) {
		return false
	}
	for _, ctr := range pod.Spec.Containers {
		found := false
		for _, e := range ctr.Env {
			found = found || (e.Name == mutate.EnvRoleARN && e.Value == harness.ExampleRoleARN)
		}
		if !found {
			return false
		}
	}
	return true
}

// With both webhook replicas gone, a Pod in kube-system is still created
// (the namespaceSelector never sends it), while one in a covered namespace
// is refused (failurePolicy Fail); with the replicas back, that one is
// created and injected.
func testKubeSystemWhileWebhookDown(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	const ns, sa = "while-down", "reader"
	installedWorkloadNamespace(t, ctx, ins.s, ns, sa)
	scale(t, ctx, c, 0)
	t.Cleanup(func() {
		// Leave the install as the next subtest expects it.
		scale(t, context.Background(), c, 2)
		if err := harness.WaitRollout(context.Background(), ins.s, installNS, webhookDeployment, rolloutTimeout); err != nil {
			t.Error(err)
		}
	})
	if err := harness.WaitFor(ctx, rolloutTimeout, "no webhook pod left", func(ctx context.Context) error {
		if n := len(webhookPods(t, ctx, c)); n > 0 {
			return fmt.Errorf("%d webhook pods left", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sys := gatedPod("while-webhook-down", "default")
	if _, err := c.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, sys, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kube-system pod with no webhook replica: %v", err)
	}
	_, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("refused", sa), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Fatalf("pod in %s with no webhook replica: got %v, want a failed webhook call", ns, err)
	}
	scale(t, ctx, c, 2)
	if err := harness.WaitRollout(ctx, ins.s, installNS, webhookDeployment, rolloutTimeout); err != nil {
		t.Fatal(err)
	}
	// Ready replicas answer as soon as the API server sees their endpoints.
	if err := harness.WaitFor(ctx, time.Minute, "pod in "+ns+" created again", func(ctx context.Context) error {
		p, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("after", sa), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !injected(p) {
			t.Errorf("pod %s/%s created without credentials", ns, p.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.CoreV1().Pods(metav1.NamespaceSystem).Delete(ctx, sys.Name, metav1.DeleteOptions{})
}

func scale(t *testing.T, ctx context.Context, c kubernetes.Interface, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := c.AppsV1().Deployments(installNS).Patch(ctx, webhookDeployment, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("scale %s to %d: %v", webhookDeployment, n, err)
	}
}

// gatedPod is a Pod that is stored and never scheduled (a scheduling gate
// nobody removes), so a burst of them costs the node nothing, and deleting
// one is immediate.
func gatedPod(name, sa string) *corev1.Pod {
	p := harness.SimplePod(name, sa)
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "irsa-e2e.io/never"}}
	return p
}

// burstResult counts a burst's creations and says what went wrong.
type burstResult struct {
	created, injected int
	failures          []string
}

// disruptAt is the Pod of a burst at whose creation the disruption starts:
// the webhook has been answering the burst for a while by then.
const disruptAt = 20

// runBurst creates Pods of sa in ns from 8 clients, at most one every
// interval; when Pod disruptAt is sent it runs disrupt (once, beside the
// burst), and it goes on until at least burstSize Pods were created and
// done() is true after disrupt returned (bounded by burstTimeout and
// maxBurstPods). It returns how many creations were admitted with
// credentials, and every failure.
func runBurst(ctx context.Context, c kubernetes.Interface, ns, sa string, interval time.Duration, disrupt func() error, done func() bool) burstResult {
	ctx, cancel := context.WithTimeout(ctx, burstTimeout)
	defer cancel()
	const workers = 8
	var (
		mu        sync.Mutex
		res       burstResult
		n         atomic.Int64
		wg        sync.WaitGroup
		disrupted atomic.Bool
	)
	finished := func() bool { return disrupted.Load() && done() }
	tick := time.NewTicker(interval)
	defer tick.Stop()
	next := make(chan int64)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod(fmt.Sprintf("burst-%03d", i), sa), metav1.CreateOptions{})
				mu.Lock()
				switch {
				case err != nil:
					res.failures = append(res.failures, fmt.Sprintf("pod %d: %v", i, err))
				case !injected(p):
					res.created++
					res.failures = append(res.failures, fmt.Sprintf("pod %d: admitted without credentials", i))
				default:
					res.created++
					res.injected++
				}
				mu.Unlock()
			}
		}()
	}
loop:
	for {
		i := n.Load()
		if i >= maxBurstPods || (i >= burstSize && finished()) {
			break
		}
		if i == disruptAt {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := disrupt(); err != nil {
					mu.Lock()
					res.failures = append(res.failures, "disruption: "+err.Error())
					mu.Unlock()
					return
				}
				disrupted.Store(true)
			}()
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		select {
		case next <- i:
			n.Add(1)
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	if !finished() {
		res.failures = append(res.failures, fmt.Sprintf("the webhook's change was not done after %d pods", n.Load()))
	}
	return res
}

// deleteBurst deletes the burst's Pods (unscheduled: gone at once).
func deleteBurst(t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	if err := c.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		t.Errorf("delete burst pods: %v", err)
	}
}

// A rolling restart of the webhook Deployment (kubectl rollout restart:
// a new template annotation) while Pods are created at a steady rate:
// every creation is admitted with credentials, before, during and after
// (maxUnavailable 0, the readiness probe, and the endpoints the API
// server calls following both).
func testRolloutDuringBurst(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	const ns, sa = "burst-rollout", "reader"
	installedWorkloadNamespace(t, ctx, ins.s, ns, sa)
	t.Cleanup(func() { deleteBurst(t, c, ns) })
	old := podNames(webhookPods(t, ctx, c))
	restart := func() error {
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
		_, err := c.AppsV1().Deployments(installNS).Patch(ctx, webhookDeployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}
	res := runBurst(ctx, c, ns, sa, 150*time.Millisecond, restart, func() bool { return rolledOver(ctx, c, ins.s, old) })
	t.Logf("%d pods created, %d with credentials, during a rolling restart of %s", res.created, res.injected, webhookDeployment)
	for _, f := range res.failures {
		t.Error(f)
	}
	if res.created < burstSize || res.injected != res.created {
		t.Errorf("created %d, injected %d: want every one of at least %d injected", res.created, res.injected, burstSize)
	}
}

// rolledOver reports whether the webhook Deployment finished rolling out
// and none of the old Pods is left.
func rolledOver(ctx context.Context, c kubernetes.Interface, s *harness.Stack, old map[string]bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pods, err := c.CoreV1().Pods(installNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	if err != nil {
		return false
	}
	for _, p := range pods.Items {
		if old[p.Name] {
			return false
		}
	}
	return harness.WaitRollout(ctx, s, installNS, webhookDeployment, time.Second) == nil
}

func podNames(pods []corev1.Pod) map[string]bool {
	m := map[string]bool{}
	for _, p := range pods {
		m[p.Name] = true
	}
	return m
}

// Deleting one webhook Pod while Pods are created: none is lost. The
// Deployment replaces it, and the other replica keeps answering.
func testDeletePodDuringBurst(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	const ns, sa = "burst-delete", "reader"
	installedWorkloadNamespace(t, ctx, ins.s, ns, sa)
	t.Cleanup(func() { deleteBurst(t, c, ns) })
	pods := webhookPods(t, ctx, c)
	if len(pods) == 0 {
		t.Fatal("no webhook pod")
	}
	victim := pods[0].Name
	del := func() error { return c.CoreV1().Pods(installNS).Delete(ctx, victim, metav1.DeleteOptions{}) }
	res := runBurst(ctx, c, ns, sa, 100*time.Millisecond, del, func() bool {
		return rolledOver(ctx, c, ins.s, map[string]bool{victim: true})
	})
	t.Logf("%d pods created, %d with credentials, while webhook pod %s was deleted and replaced", res.created, res.injected, victim)
	for _, f := range res.failures {
		t.Error(f)
	}
	if res.created < burstSize || res.injected != res.created {
		t.Errorf("created %d, injected %d: want every one of at least %d injected", res.created, res.injected, burstSize)
	}
}

// Deleting every object of the install (kubectl delete -f of the rendered
// file) leaves no MutatingWebhookConfiguration of the project, and Pods
// are created again (without credentials: nothing injects any more).
func testDeleteInstall(t *testing.T, ctx context.Context, ins *installed) {
	c := ins.c
	if err := ins.in.Delete(ctx, ins.s); err != nil {
		t.Fatal(err)
	}
	confs, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range confs.Items {
		t.Errorf("webhook configuration %s left after the delete", conf.Name)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, installNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after the delete: %v", installNS, err)
	}
	const ns, sa = "after-uninstall", "reader"
	installedWorkloadNamespace(t, ctx, ins.s, ns, sa)
	p, err := c.CoreV1().Pods(ns).Create(ctx, gatedPod("after-uninstall", sa), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod creation after the uninstall: %v", err)
	}
	if harness.HasTokenVolume(p) {
		t.Errorf("pod %s injected after the uninstall", p.Name)
	}
}
