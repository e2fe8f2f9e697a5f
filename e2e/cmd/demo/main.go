// Command demo is what `make demo` runs: it builds what it needs (cached
// after the first run), starts a local stack of real parts (etcd,
// kube-apiserver, irsa-webhook serve and discovery serve, MinIO as the STS
// and S3 peer) and walks one Pod from its ServiceAccount annotation to
// reading an S3 object with the unmodified AWS SDK, narrating each step.
// When the machine can run a node (root, overlayfs, runc, iptables, the CNI
// plugins), the walk ends with a real Pod: a Deployment scheduled onto a
// kubelet, whose log shows the object read with the kubelet's token; when
// it cannot, the demo says why and walks without it.
//
// It exits 0 only if the object was read, and stops every process it
// started, also on failure and on Ctrl-C.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/images"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

const (
	namespace      = "demo"
	serviceAccount = "s3-reader"
	podName        = "s3-reader"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	n := &narrator{w: out, color: isTerminal(out)}
	start := time.Now()
	dir, err := os.MkdirTemp("", "irsa-webhook-demo-")
	if err != nil {
		return err
	}
	node := harness.NodeUnsupported() == nil
	what := "kube-apiserver, etcd and MinIO are"
	if node {
		what = "kube-apiserver, etcd, MinIO, and the node's kubelet, kube-controller-manager, kube-scheduler and containerd are"
	}
	n.step("Build", what+" built from their Go modules once and cached (the first run takes a while); irsa-webhook is built from this checkout.")
	buildCtx, cancel := context.WithTimeout(ctx, 60*time.Minute)
	defer cancel()
	bins, err := harness.Build(buildCtx, harness.BuildOptions{OutDir: filepath.Join(dir, "bin"), Progress: n.indent(), Node: node, NodeImages: nodeImages})
	if err != nil {
		return err
	}

	n.step("Start", "etcd and kube-apiserver on 127.0.0.1, the discovery server as the token issuer, MinIO as STS and S3 (an OpenID client of the discovery server), and the webhook, registered as a MutatingWebhookConfiguration.")
	if why := harness.NodeUnsupported(); why != nil {
		n.printf("No real node in this walk: %v.\nThe walk does the kubelet's part itself (step 4).\n", why)
	} else {
		n.printf("Then a node: kube-controller-manager, kube-scheduler, containerd with runc and a CNI bridge of its own, and a kubelet.\n")
	}
	s, err := harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins, Progress: n.indent(), Node: node})
	if err != nil && node && ctx.Err() == nil {
		// A machine that has the parts may still refuse a node (a kernel
		// without a module, a foreign firewall): say so and walk without.
		n.printf("The node could not start: %v\nStopping it and walking without a real Pod.\n", err)
		if s != nil {
			if stopErr := s.Stop(); stopErr != nil {
				return fmt.Errorf("stop the stack that failed to start: %w", stopErr)
			}
		}
		node = false
		_ = os.RemoveAll(dir)
		if dir, err = os.MkdirTemp("", "irsa-webhook-demo-"); err != nil {
			return err
		}
		s, err = harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins, Progress: n.indent()})
	}
	defer func() {
		if s == nil {
			return
		}
		if stopErr := s.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		if err != nil {
			s.DumpLogs(os.Stderr, 20)
			fmt.Fprintf(os.Stderr, "logs kept in %s\n", s.LogDir)
			return
		}
		_ = os.RemoveAll(dir)
		n.printf("\nAll processes stopped. The whole demo took %s.\n", time.Since(start).Round(time.Second))
	}()
	if err != nil {
		return err
	}
	if err := walk(ctx, n, s); err != nil {
		return err
	}
	if s.Node == nil {
		return nil
	}
	return realPod(ctx, n, s)
}

// nodeImages builds the s3get and pause images with e2e/images.
func nodeImages(ctx context.Context, repoRoot, outDir string) (*harness.NodeImages, error) {
	t, err := images.Build(ctx, images.Options{RepoRoot: repoRoot, OutDir: outDir})
	if err != nil {
		return nil, err
	}
	return &harness.NodeImages{S3GetRef: images.S3GetRef, S3GetTarball: t.S3Get, PauseRef: images.PauseRef, PauseTarball: t.Pause}, nil
}

// realPod runs the workload image as a Deployment on the node and shows
// its log: the kubelet wrote the token, the SDK in the container read it.
func realPod(ctx context.Context, n *narrator, s *harness.Stack) error {
	c := s.APIServer.Client
	n.step("6. A real Pod", "The same ServiceAccount, now in a Deployment: the scheduler places its Pod on the node, the kubelet runs it in containerd and writes the projected token itself, and the SDK in the container exchanges it with MinIO's STS.")
	if err := s.CreateCAConfigMap(ctx, namespace); err != nil {
		return err
	}
	d := s.Node.Workload("s3-reader-deployment", serviceAccount, 5*time.Second, nil)
	if _, err := c.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	pod, err := harness.RunningPod(ctx, c, namespace, d.Name, 3*time.Minute)
	if err != nil {
		return err
	}
	n.printf("Pod %s is Running on node %s (image %s).\n", pod.Name, pod.Spec.NodeName, s.Binaries.Node.Images.S3GetRef)
	log, err := harness.WaitLog(ctx, c, pod, "app", 2*time.Minute, func(l string) bool {
		return strings.HasSuffix(l, ": "+harness.ObjectContent)
	})
	if err != nil {
		return err
	}
	n.printf("kubectl logs %s -n %s:\n%s", pod.Name, namespace, indentLines(log))
	n.printf("\n%s\n", n.green("Done: a real Pod, with the kubelet's token, read the S3 object."))
	return nil
}

func walk(ctx context.Context, n *narrator, s *harness.Stack) error {
	c := s.APIServer.Client
	roleKey := identity.Keys{Prefix: identity.DefaultPrefix}.Key(identity.RoleARN)

	n.step("1. ServiceAccount", "The only thing a user adds: the role annotation on the ServiceAccount.")
	if err := harness.EnsureNamespace(ctx, c, namespace); err != nil {
		return err
	}
	annotations := map[string]string{roleKey: harness.ExampleRoleARN}
	if err := harness.CreateServiceAccount(ctx, c, namespace, serviceAccount, annotations); err != nil {
		return err
	}
	n.yaml(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"namespace": namespace, "name": serviceAccount, "annotations": annotations}})
	if err := s.MinIO.AllowServiceAccount(ctx, namespace, serviceAccount, harness.Bucket); err != nil {
		return err
	}
	n.printf("On the STS side, access is granted to the token subject %q only\n(MinIO policy of that name; on AWS, the role trust policy's :sub condition).\n",
		harness.PolicyName(namespace, serviceAccount))

	n.step("2. Pod", "Created through the API server, which calls the webhook over TLS. Lines marked + were added by irsa-webhook.")
	submitted := harness.SimplePod(podName, serviceAccount)
	if _, err := c.CoreV1().Pods(namespace).Create(ctx, submitted, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	stored, err := c.CoreV1().Pods(namespace).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod: %w", err)
	}
	if !harness.HasTokenVolume(stored) {
		return fmt.Errorf("the stored pod has no %s volume: the webhook did not inject", mutate.VolumeName)
	}
	before, err := yaml.Marshal(podView(submitted))
	if err != nil {
		return err
	}
	after, err := yaml.Marshal(podView(stored))
	if err != nil {
		return err
	}
	n.diff(string(before), string(after))
	n.printf("(The API server's own ServiceAccount admission also adds a kube-api-access-* volume; it is left out here.)\n")

	n.step("3. Discovery", "The issuer's public documents, which AWS IAM (here MinIO) fetches to verify tokens.")
	doc, err := s.Discovery.Get(ctx, "/.well-known/openid-configuration")
	if err != nil {
		return err
	}
	n.printf("GET %s/.well-known/openid-configuration\n", s.Discovery.Issuer)
	n.json(doc)
	jwks, err := s.Discovery.JWKS(ctx)
	if err != nil {
		return err
	}
	for _, k := range jwks.Keys {
		n.printf("JWKS key: kty=%s alg=%s use=%s kid=%s\n", k.Kty, k.Alg, k.Use, k.Kid)
	}

	n.step("4. Token", "What kubelet would write into the projected volume: a TokenRequest with the volume's audience and expiration. Decoded here; the token itself is never shown.")
	token, err := harness.RequestToken(ctx, c, stored)
	if err != nil {
		return err
	}
	header, claims, err := decodeJWT(token)
	if err != nil {
		return err
	}
	n.printf("header:\n")
	n.json(header)
	n.printf("claims:\n")
	n.json(claims)

	n.step("5. STS exchange and S3", "A separate process with exactly the container's env (plus AWS_ENDPOINT_URL_STS/S3 pointing at MinIO) runs the AWS SDK for Go v2's default credential chain: AssumeRoleWithWebIdentity, then GetObject.")
	tmp, err := os.MkdirTemp(s.Dir, "pod-root-")
	if err != nil {
		return err
	}
	env, err := s.ContainerEnv(stored, "app", token, tmp)
	if err != nil {
		return err
	}
	for _, e := range env {
		if strings.HasPrefix(e, "AWS_") {
			n.printf("  %s\n", e)
		}
	}
	res := s.RunS3Get(ctx, env, harness.Bucket, harness.ObjectKey)
	n.printf("%s", indentLines(res.Stderr))
	if res.Err != nil {
		return fmt.Errorf("the SDK could not read s3://%s/%s: %w", harness.Bucket, harness.ObjectKey, res.Err)
	}
	n.printf("s3://%s/%s contains: %s\n", harness.Bucket, harness.ObjectKey, n.green(res.Stdout))
	if res.Stdout != harness.ObjectContent {
		return fmt.Errorf("read %q, want %q", res.Stdout, harness.ObjectContent)
	}
	n.printf("\n%s\n", n.green("Done: the Pod's token, verified by a real STS, read a real S3 object."))
	return nil
}

// podView keeps what the webhook touches, without the API server's own
// kube-api-access volume and mounts; containers are keyed by name.
func podView(p *corev1.Pod) map[string]any {
	containers := map[string]any{} // keyed by name, so a diff lines up
	for _, c := range p.Spec.Containers {
		var mounts []corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(m.Name, "kube-api-access-") {
				mounts = append(mounts, m)
			}
		}
		view := map[string]any{"image": c.Image}
		if len(c.Env) > 0 {
			view["env"] = c.Env
		}
		if len(mounts) > 0 {
			view["volumeMounts"] = mounts
		}
		containers[c.Name] = view
	}
	var volumes []corev1.Volume
	for _, v := range p.Spec.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") {
			volumes = append(volumes, v)
		}
	}
	spec := map[string]any{"serviceAccountName": p.Spec.ServiceAccountName, "containers": containers}
	if len(volumes) > 0 {
		spec["volumes"] = volumes
	}
	return map[string]any{"spec": spec}
}

func decodeJWT(token string) (header, claims []byte, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("token is not a compact JWS")
	}
	if header, err = base64.RawURLEncoding.DecodeString(parts[0]); err != nil {
		return nil, nil, fmt.Errorf("decode token header: %w", err)
	}
	if claims, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		return nil, nil, fmt.Errorf("decode token claims: %w", err)
	}
	return header, claims, nil
}

func indentLines(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
