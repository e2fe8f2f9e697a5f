package scenarios

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Defaults the harness runs the webhook with (its flag defaults plus the
// region and regional STS the install manifests set).
const (
	defaultMountPath  = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	defaultExpiration = int64(86400)
)

var keys = identity.Keys{Prefix: identity.DefaultPrefix}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// annotatedServiceAccount creates namespace and an annotated ServiceAccount
// that MinIO lets read the test bucket.
func annotatedServiceAccount(t *testing.T, ctx context.Context, s *harness.Stack, ns, name string, allow bool) {
	t.Helper()
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, name, map[string]string{keys.Key(identity.RoleARN): harness.ExampleRoleARN}); err != nil {
		t.Fatal(err)
	}
	if allow {
		if err := s.MinIO.AllowServiceAccount(ctx, ns, name, harness.Bucket); err != nil {
			t.Fatal(err)
		}
	}
}

// createPod creates pod in ns through the API server (and so through the
// webhook) and returns the Pod as stored, read back with a GET.
func createPod(t *testing.T, ctx context.Context, s *harness.Stack, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	c := s.APIServer.Client.CoreV1().Pods(ns)
	created, err := c.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, pod.Name, err)
	}
	stored, err := c.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, created.Name, err)
	}
	return stored
}

// awsEnv returns the container's AWS_* variables in order.
func awsEnv(c corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "AWS_") {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env
}

// wantInjectedEnv is what a container that set nothing itself gets.
func wantInjectedEnv(roleARN string) []string {
	return []string{
		mutate.EnvRoleARN + "=" + roleARN,
		mutate.EnvWebIdentityTokenFile + "=" + path.Join(defaultMountPath, mutate.TokenFile),
		mutate.EnvSTSRegionalEndpoints + "=regional",
		mutate.EnvRegion + "=" + harness.Region,
		mutate.EnvDefaultRegion + "=" + harness.Region,
	}
}

// checkInjected asserts the webhook's volume, and mount and env in each of
// the named containers (init containers included).
func checkInjected(t *testing.T, pod *corev1.Pod, containers ...string) {
	t.Helper()
	proj := harness.TokenVolume(pod)
	if proj == nil {
		t.Fatalf("stored pod %s/%s has no %s volume; volumes: %v", pod.Namespace, pod.Name, mutate.VolumeName, volumeNames(pod))
	}
	wantProj := corev1.ServiceAccountTokenProjection{Audience: harness.DefaultAudience, ExpirationSeconds: ptrTo(defaultExpiration), Path: mutate.TokenFile}
	if diff := cmp.Diff(wantProj, *proj); diff != "" {
		t.Errorf("token projection (-want +got):\n%s", diff)
	}
	for _, name := range containers {
		c := container(t, pod, name)
		wantMount := corev1.VolumeMount{Name: mutate.VolumeName, MountPath: defaultMountPath, ReadOnly: true}
		if i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == mutate.VolumeName }); i < 0 {
			t.Errorf("container %s has no %s mount", name, mutate.VolumeName)
		} else if diff := cmp.Diff(wantMount, c.VolumeMounts[i]); diff != "" {
			t.Errorf("container %s mount (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(wantInjectedEnv(harness.ExampleRoleARN), awsEnv(c)); diff != "" {
			t.Errorf("container %s AWS env (-want +got):\n%s", name, diff)
		}
	}
}

// checkUntouched asserts that nothing of the webhook's is in the pod.
func checkUntouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if harness.HasTokenVolume(pod) {
		t.Errorf("pod %s/%s has the %s volume, want none", pod.Namespace, pod.Name, mutate.VolumeName)
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if env := awsEnv(c); len(env) > 0 {
			t.Errorf("container %s has AWS env %v, want none", c.Name, env)
		}
		for _, m := range c.VolumeMounts {
			if m.Name == mutate.VolumeName {
				t.Errorf("container %s has the %s mount, want none", c.Name, mutate.VolumeName)
			}
		}
	}
}

func container(t *testing.T, pod *corev1.Pod, name string) corev1.Container {
	t.Helper()
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("pod %s/%s has no container %s", pod.Namespace, pod.Name, name)
	return corev1.Container{}
}

func volumeNames(pod *corev1.Pod) []string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		names = append(names, v.Name)
	}
	return names
}

func ptrTo[T any](v T) *T { return &v }

// readObjectAs runs the SDK client as container of the stored pod, with a
// token requested as kubelet would, and returns what it printed.
func readObjectAs(t *testing.T, ctx context.Context, s *harness.Stack, pod *corev1.Pod, containerName string) harness.ClientResult {
	t.Helper()
	token, err := harness.RequestToken(ctx, s.APIServer.Client, pod)
	if err != nil {
		t.Fatal(err)
	}
	return runClientWithToken(t, ctx, s, pod, containerName, token)
}

func runClientWithToken(t *testing.T, ctx context.Context, s *harness.Stack, pod *corev1.Pod, containerName, token string) harness.ClientResult {
	t.Helper()
	env, err := s.ContainerEnv(pod, containerName, token, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s.RunS3Get(ctx, env, harness.Bucket, harness.ObjectKey)
}

// wantObject asserts that the client read the test object.
func wantObject(t *testing.T, res harness.ClientResult) {
	t.Helper()
	if res.Err != nil || res.Stdout != harness.ObjectContent {
		t.Fatalf("s3get: err=%v stdout=%q, want %q; stderr:\n%s", res.Err, res.Stdout, harness.ObjectContent, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "source=WebIdentityCredentials") {
		t.Errorf("s3get credentials did not come from the web identity provider; stderr:\n%s", res.Stderr)
	}
}

// wantRefused asserts that the client got no object and that the STS
// exchange failed with a message containing reason.
func wantRefused(t *testing.T, res harness.ClientResult, reason string) {
	t.Helper()
	if res.Err == nil || res.Stdout != "" {
		t.Fatalf("s3get succeeded (stdout %q), want it refused", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "AssumeRoleWithWebIdentity") || !strings.Contains(res.Stderr, reason) {
		t.Errorf("s3get stderr does not name AssumeRoleWithWebIdentity and %q:\n%s", reason, res.Stderr)
	}
}

// verifyLikeAWS checks a token the way AWS IAM does for a web identity: the
// discovery document's issuer is exactly the token's iss, the signature
// verifies with a key of the published JWKS and an algorithm AWS accepts,
// the audience is the client ID, and sub is present. MinIO skips some of
// these (it ignores iss), so they are checked here with go-oidc.
func verifyLikeAWS(ctx context.Context, s *harness.Stack, token, audience string) (*oidc.IDToken, error) {
	ctx = oidc.ClientContext(ctx, s.Discovery.HTTPClient())
	provider, err := oidc.NewProvider(ctx, s.Discovery.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.Discovery.Issuer, err)
	}
	v := provider.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512}})
	idt, err := v.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if idt.Subject == "" {
		return nil, errors.New("token has no sub claim")
	}
	return idt, nil
}
