package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// helperImage is what the webhook is told runs the SVID helper; no kubelet
// pulls it here, the scenarios run the helper binary with the sidecar's args.
const helperImage = "registry.example/irsa-webhook:e2e"

var (
	spireOnce sync.Once
	spireBins *harness.SPIREBinaries
	spireErr  error
)

// buildSPIRE builds SPIRE once per run (cold: several minutes).
func buildSPIRE(t *testing.T) *harness.SPIREBinaries {
	t.Helper()
	spireOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
		defer cancel()
		spireBins, spireErr = harness.BuildSPIRE(ctx, harness.BuildOptions{Progress: os.Stderr})
	})
	if spireErr != nil {
		t.Fatalf("build SPIRE: %v", spireErr)
	}
	return spireBins
}

// startSPIRE runs a SPIRE server and agent whose JWT-SVIDs carry issuer.
func startSPIRE(t *testing.T, ctx context.Context, s *harness.Stack, o harness.SPIREOptions) *harness.SPIRE {
	t.Helper()
	sp, err := harness.StartSPIRE(ctx, buildSPIRE(t), filepath.Join(s.Dir, "spire"), o)
	if err != nil {
		t.Fatalf("start SPIRE: %v", err)
	}
	t.Cleanup(func() {
		if err := sp.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, p := range sp.Processes() {
				t.Logf("===== %s, last 40 lines =====\n%s", p.Name, p.LogTail(40))
			}
		}
	})
	return sp
}

// spiffeStack is a Stack whose discovery server serves SPIRE's JWT bundle
// (--from-spiffe) and whose MinIO trusts it: JWT-SVIDs are what AWS would
// be shown.
func spiffeStack(t *testing.T, ctx context.Context) (*harness.Stack, *harness.SPIRE) {
	t.Helper()
	s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{"--spiffe-helper-image=" + helperImage}})
	sp := startSPIRE(t, ctx, s, harness.SPIREOptions{JWTIssuer: s.Discovery.Issuer})
	s.Discovery.Configure(harness.DiscoverySource{ExtraArgs: []string{"--from-spiffe", "--workload-api-addr=" + sp.WorkloadAPIAddr}})
	if err := s.Discovery.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// MinIO read the API server's keys at start; make it read SPIRE's.
	if err := s.MinIO.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	return s, sp
}

func spiffeServiceAccount(t *testing.T, ctx context.Context, s *harness.Stack, ns, name, spiffeID string) {
	t.Helper()
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{
		keys.Key(identity.RoleARN):     harness.ExampleRoleARN,
		keys.Key(identity.TokenSource): identity.TokenSourceSPIFFE,
	}
	if spiffeID != "" {
		ann[keys.Key(identity.SPIFFEID)] = spiffeID
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, name, ann); err != nil {
		t.Fatal(err)
	}
}

// sidecar returns the SVID helper the webhook added.
func sidecar(t *testing.T, pod *corev1.Pod) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == mutate.SVIDHelperName })
	if i < 0 {
		t.Fatalf("pod %s/%s has no %s sidecar; init containers: %v", pod.Namespace, pod.Name, mutate.SVIDHelperName, pod.Spec.InitContainers)
	}
	return pod.Spec.InitContainers[i]
}

// localPath is where a path inside the pod's shared token volume lives
// under root on this machine.
func localPath(root, podPath string) string { return filepath.Join(root, filepath.FromSlash(podPath)) }

// runSidecar runs `irsa-webhook svid-helper` with exactly the sidecar's
// args, except the two a kubelet would resolve: the Workload API socket (the
// CSI volume's mount) is the agent's, and the token file is under root.
func runSidecar(t *testing.T, s *harness.Stack, sp *harness.SPIRE, pod *corev1.Pod, root string, extra ...string) *harness.Process {
	t.Helper()
	c := sidecar(t, pod)
	var args []string
	for _, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--workload-api-addr="):
			a = "--workload-api-addr=" + sp.WorkloadAPIAddr
		case strings.HasPrefix(a, "--file="):
			a = "--file=" + localPath(root, strings.TrimPrefix(a, "--file="))
		}
		args = append(args, a)
	}
	if err := os.MkdirAll(localPath(root, defaultMountPath), 0o700); err != nil {
		t.Fatal(err)
	}
	p := &harness.Process{
		Name: "svid-helper", Path: s.Binaries.IrsaWebhook, Args: append(args, extra...),
		LogPath: filepath.Join(s.LogDir, "svid-helper-"+strings.ReplaceAll(t.Name(), "/", "-")+".log"),
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("svid-helper log:\n%s", p.LogTail(40))
		}
	})
	return p
}

// waitStartupProbe runs the sidecar's startup probe command (with the token
// path under root) until it passes, as the kubelet would before starting
// the application containers.
func waitStartupProbe(t *testing.T, ctx context.Context, s *harness.Stack, pod *corev1.Pod, root string, timeout time.Duration) {
	t.Helper()
	probe := sidecar(t, pod).StartupProbe
	if probe == nil || probe.Exec == nil || len(probe.Exec.Command) < 2 || probe.Exec.Command[0] != mutate.HelperBinary {
		t.Fatalf("sidecar startup probe is not an exec of %s: %+v", mutate.HelperBinary, probe)
	}
	var args []string
	for _, a := range probe.Exec.Command[1:] {
		if strings.HasPrefix(a, "--file=") {
			a = "--file=" + localPath(root, strings.TrimPrefix(a, "--file="))
		}
		args = append(args, a)
	}
	var last harness.ClientResult
	err := harness.WaitFor(ctx, timeout, "sidecar startup probe", func(ctx context.Context) error {
		last = s.RunCLI(ctx, args...)
		return last.Err
	})
	if err != nil {
		t.Fatalf("%v; probe stderr: %s", err, last.Stderr)
	}
}

// readWithSidecarToken runs the SDK client as the app container, with the
// token the helper currently keeps under root.
func readWithSidecarToken(t *testing.T, ctx context.Context, s *harness.Stack, pod *corev1.Pod, root string) harness.ClientResult {
	t.Helper()
	file := localPath(root, filepath.Join(defaultMountPath, mutate.TokenFile))
	token, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The app's view of the shared volume is a copy taken now, so that
	// the helper's own file is only ever written by the helper.
	env, err := s.ContainerEnv(pod, "app", string(token), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s.RunS3Get(ctx, env, harness.Bucket, harness.ObjectKey)
}

func spiffeContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// SPIFFE scenarios 2 to 5 on one Stack and SPIRE: the helper run with the sidecar's args writes a JWT-SVID that the AWS SDK exchanges with
// MinIO (trusting `discovery serve --from-spiffe`) to read the object; a
// two-minute JWT-SVID is refreshed before it expires and still works; a
// helper started before its entry exists recovers; a JWT-SVID for
// another SPIFFE ID is refused by the sub rule; and a container with a
// profile reads the object through the config file of its own volume.
func TestSPIFFE(t *testing.T) {
	ctx := spiffeContext(t)
	s, sp := spiffeStack(t, ctx)
	const ns = "team-s"
	appID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/app"
	if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: appID, Selectors: []string{harness.UIDSelector()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MinIO.AllowSubject(ctx, appID, harness.Bucket); err != nil {
		t.Fatal(err)
	}
	spiffeServiceAccount(t, ctx, s, ns, "app", appID)

	t.Run("helper token reads S3", func(t *testing.T) {
		pod := createPod(t, ctx, s, ns, harness.SimplePod("app-1", "app"))
		root := t.TempDir()
		runSidecar(t, s, sp, pod, root)
		waitStartupProbe(t, ctx, s, pod, root, 60*time.Second)
		wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
	})

	t.Run("a profile reads S3 through its config volume", func(t *testing.T) {
		const profSA = "profiles"
		profID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/" + profSA
		if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: profID, Selectors: []string{harness.UIDSelector()}}); err != nil {
			t.Fatal(err)
		}
		if err := s.MinIO.AllowSubject(ctx, profID, harness.Bucket); err != nil {
			t.Fatal(err)
		}
		spiffeServiceAccount(t, ctx, s, ns, profSA, profID)
		saClient := s.APIServer.Client.CoreV1().ServiceAccounts(ns)
		got, err := saClient.Get(ctx, profSA, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Annotations[identity.Profiles] = "reader=arn:aws:iam::111122223333:role/e2e-spiffe-reader"
		if _, err := saClient.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := harness.SimplePod("prof-0", profSA)
		p.Annotations = map[string]string{identity.ContainerProfiles: "app=reader"}
		pod := createPod(t, ctx, s, ns, p)
		app := container(t, pod, "app")
		env := map[string]string{}
		for _, e := range app.Env {
			env[e.Name] = e.Value
		}
		if env[mutate.EnvProfile] != "reader" || env[mutate.EnvRoleARN] != "" ||
			env[mutate.EnvConfigFile] != mutate.ConfigMountPath(defaultMountPath)+"/"+mutate.ConfigFile {
			t.Fatalf("app env %v, want AWS_PROFILE=reader and the config volume's file, without AWS_ROLE_ARN", env)
		}
		root := t.TempDir()
		runSidecar(t, s, sp, pod, root)
		waitStartupProbe(t, ctx, s, pod, root, 60*time.Second)
		wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
	})

	t.Run("helper started before its entry", func(t *testing.T) {
		const lateSA = "late"
		lateID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/" + lateSA
		spiffeServiceAccount(t, ctx, s, ns, lateSA, lateID)
		if err := s.MinIO.AllowSubject(ctx, lateID, harness.Bucket); err != nil {
			t.Fatal(err)
		}
		pod := createPod(t, ctx, s, ns, harness.SimplePod("late-0", lateSA))
		root := t.TempDir()
		helper := runSidecar(t, s, sp, pod, root, "--max-backoff=2s")
		// The helper says why it has no token, and has none.
		if err := harness.WaitFor(ctx, 60*time.Second, "helper reports the missing entry", func(context.Context) error {
			if !strings.Contains(helper.LogTail(50), "no identity") {
				return os.ErrNotExist
			}
			return nil
		}); err != nil {
			t.Fatalf("%v; log:\n%s", err, helper.LogTail(20))
		}
		if _, err := os.Stat(localPath(root, filepath.Join(defaultMountPath, mutate.TokenFile))); err == nil {
			t.Fatal("token written before the entry exists")
		}
		if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: lateID, Selectors: []string{harness.UIDSelector()}}); err != nil {
			t.Fatal(err)
		}
		waitStartupProbe(t, ctx, s, pod, root, 90*time.Second)
		wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
	})

	t.Run("short lifetime is refreshed", func(t *testing.T) {
		const shortSA = "short"
		shortID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/" + shortSA
		if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: shortID, Selectors: []string{harness.UIDSelector()}, JWTSVIDTTL: 2 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		if err := s.MinIO.AllowSubject(ctx, shortID, harness.Bucket); err != nil {
			t.Fatal(err)
		}
		spiffeServiceAccount(t, ctx, s, ns, shortSA, shortID)
		pod := createPod(t, ctx, s, ns, harness.SimplePod("short-0", shortSA))
		root := t.TempDir()
		runSidecar(t, s, sp, pod, root)
		waitStartupProbe(t, ctx, s, pod, root, 90*time.Second)
		file := localPath(root, filepath.Join(defaultMountPath, mutate.TokenFile))
		first, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
		// Refreshed at about half of 2 minutes; the bound is the lifetime,
		// so a token that was not refreshed would be expired by then.
		var second []byte
		if err := harness.WaitFor(ctx, 2*time.Minute, "token refreshed before expiry", func(context.Context) error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if string(b) == string(first) {
				return os.ErrExist
			}
			second = b
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := harness.WaitFor(ctx, 10*time.Second, "refreshed token passes the probe", func(ctx context.Context) error {
			return s.RunCLI(ctx, "svid-helper", "check", "--file="+file).Err
		}); err != nil {
			t.Fatal(err)
		}
		if len(second) == 0 {
			t.Fatal("no refreshed token")
		}
		wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
	})

	t.Run("another SPIFFE ID is refused", func(t *testing.T) {
		const otherSA = "other"
		otherID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/" + otherSA
		if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: otherID, Selectors: []string{harness.UIDSelector()}}); err != nil {
			t.Fatal(err)
		}
		// No policy for otherID: the trust policy's sub rule admits appID only.
		spiffeServiceAccount(t, ctx, s, ns, otherSA, otherID)
		pod := createPod(t, ctx, s, ns, harness.SimplePod("other-0", otherSA))
		root := t.TempDir()
		runSidecar(t, s, sp, pod, root)
		waitStartupProbe(t, ctx, s, pod, root, 90*time.Second)
		res := readWithSidecarToken(t, ctx, s, pod, root)
		if res.Err == nil || res.Stdout != "" {
			t.Fatalf("s3get with a JWT-SVID for %s succeeded (stdout %q), want it refused", otherID, res.Stdout)
		}
		if !strings.Contains(res.Stderr, "AssumeRoleWithWebIdentity") {
			t.Errorf("s3get stderr does not name AssumeRoleWithWebIdentity:\n%s", res.Stderr)
		}
	})
}

// SPIFFE scenario 1: the webhook mutates a pod for a token-source: spiffe
// ServiceAccount as specified, and the real API server admits the result
// (native sidecar with a startup probe, CSI and emptyDir volumes). It needs
// no SPIRE.
func TestSPIFFEMutation(t *testing.T) {
	ctx := testContext(t)
	s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{"--spiffe-helper-image=" + helperImage}})
	const ns = "team-s"
	appID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/app"
	spiffeServiceAccount(t, ctx, s, ns, "app", appID)
	pod := createPod(t, ctx, s, ns, harness.SimplePod("app-0", "app"))
	c := sidecar(t, pod)
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways || c.Image != helperImage {
		t.Errorf("sidecar is not a native sidecar of %s: restartPolicy %v image %s", helperImage, c.RestartPolicy, c.Image)
	}
	wantArgs := []string{"svid-helper", "--workload-api-addr=unix:///spiffe-workload-api/spire-agent.sock",
		"--audience=" + harness.DefaultAudience, "--file=" + defaultMountPath + "/token", "--spiffe-id=" + appID}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("sidecar args (-want +got):\n%s", diff)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols[mutate.VolumeName]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("token volume is not an in-memory emptyDir: %+v", v)
	}
	if v := vols[mutate.SocketVolumeName]; v.CSI == nil || v.CSI.Driver != mutate.CSIDriver {
		t.Errorf("socket volume is not the %s CSI driver: %+v", mutate.CSIDriver, v)
	}
	app := container(t, pod, "app")
	if diff := cmp.Diff(wantInjectedEnv(harness.ExampleRoleARN), awsEnv(app)); diff != "" {
		t.Errorf("app AWS env (-want +got):\n%s", diff)
	}
	for _, m := range app.VolumeMounts {
		if m.Name == mutate.SocketVolumeName {
			t.Errorf("app container mounts the Workload API socket")
		}
	}
	if n := len(pod.Spec.InitContainers); n != 1 {
		t.Errorf("pod has %d init containers, want only the sidecar", n)
	}
}

// SPIFFE scenario 2 with SPIRE's own oidc-discovery-provider as MinIO's
// OpenID provider instead of `discovery serve --from-spiffe`.
func TestSPIFFEWithSPIREDiscoveryProvider(t *testing.T) {
	ctx := spiffeContext(t)
	s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{"--spiffe-helper-image=" + helperImage}})
	op, err := harness.NewOIDCProvider()
	if err != nil {
		t.Fatal(err)
	}
	sp := startSPIRE(t, ctx, s, harness.SPIREOptions{JWTIssuer: op.Issuer})
	if err := op.Start(ctx, sp, s.PKI, filepath.Join(s.Dir, "spire")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := op.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("spire-oidc-discovery-provider log:\n%s", op.LogTail(40))
		}
	})
	s.MinIO.SetOpenIDConfigURL(op.Issuer + "/.well-known/openid-configuration")
	if err := s.MinIO.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	const ns = "team-p"
	appID := "spiffe://" + harness.TrustDomain + "/ns/" + ns + "/sa/app"
	if _, err := sp.CreateEntry(ctx, harness.Entry{SPIFFEID: appID, Selectors: []string{harness.UIDSelector()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MinIO.AllowSubject(ctx, appID, harness.Bucket); err != nil {
		t.Fatal(err)
	}
	spiffeServiceAccount(t, ctx, s, ns, "app", appID)
	pod := createPod(t, ctx, s, ns, harness.SimplePod("app-0", "app"))
	root := t.TempDir()
	runSidecar(t, s, sp, pod, root)
	waitStartupProbe(t, ctx, s, pod, root, 90*time.Second)
	wantObject(t, readWithSidecarToken(t, ctx, s, pod, root))
}
