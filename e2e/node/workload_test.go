package node

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Bounds of the waits on a running node (a Pod starts in seconds here;
// the bounds are for a loaded machine).
const (
	podTimeout = 3 * time.Minute
	logTimeout = 2 * time.Minute
)

// readLine is the s3get line of a successful read of the test object.
func readLine(l string) bool {
	_, obj, ok := strings.Cut(l, ": ")
	return ok && strings.HasPrefix(l, "read ") && obj == harness.ObjectContent
}

// A Deployment of the workload image, as root and as a non-root user with
// no fsGroup: the Pod is scheduled and runs, the kubelet writes the
// webhook's projected token, the SDK in the container exchanges it with
// MinIO's STS and reads the object, and its log (read through the API
// server from the kubelet) says so.
func TestWorkloadReadsS3WithKubeletToken(t *testing.T) {
	s := startNode(t)
	ctx := testContext(t)
	c := s.APIServer.Client
	for _, tc := range []struct {
		name string
		user *int64
	}{
		// The image's own user is not root: both run as the test says.
		{name: "root", user: ptrTo[int64](0)},
		{name: "nonroot", user: ptrTo[int64](1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, sa := "workload-"+tc.name, "reader"
			workloadNamespace(t, ctx, s, ns, sa, nil)
			deploy(t, ctx, s, ns, "s3get", sa, 5*time.Second, tc.user)
			pod, err := harness.RunningPod(ctx, c, ns, "s3get", podTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if pod.Spec.NodeName != harness.NodeName {
				t.Errorf("pod on node %q, want %q", pod.Spec.NodeName, harness.NodeName)
			}
			if !harness.HasTokenVolume(pod) {
				t.Fatalf("pod %s has no %s volume: the webhook did not mutate it", pod.Name, mutate.VolumeName)
			}
			log, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, readLine)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(log, "failed") {
				t.Errorf("a read failed before one succeeded:\n%s", log)
			}

			// The token the SDK read is the kubelet's: a file on the host
			// in the Pod's projected volume, owned by the container's user
			// and readable by it alone.
			fi, err := os.Stat(s.Node.TokenFile(pod, mutate.VolumeName, mutate.TokenFile))
			if err != nil {
				t.Fatalf("kubelet's token file: %v", err)
			}
			if got := fileUID(fi); got != *tc.user {
				t.Errorf("token file owned by uid %d, want %d", got, *tc.user)
			}
			if *tc.user != 0 && fi.Mode().Perm() != 0o600 {
				t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

// A Pod whose ServiceAccount has no role is not mutated, runs, and its
// reads fail: access comes from the token, not from the node.
func TestWorkloadWithoutRoleCannotRead(t *testing.T) {
	s := startNode(t)
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns, sa = "no-role", "plain"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, sa, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCAConfigMap(ctx, ns); err != nil {
		t.Fatal(err)
	}
	deploy(t, ctx, s, ns, "s3get", sa, 5*time.Second, nil)
	pod, err := harness.RunningPod(ctx, c, ns, "s3get", podTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if harness.HasTokenVolume(pod) {
		t.Fatalf("pod %s of an unannotated ServiceAccount has the %s volume", pod.Name, mutate.VolumeName)
	}
	log, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, func(l string) bool { return strings.HasPrefix(l, "read 1 failed: ") })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, harness.ObjectContent) {
		t.Errorf("a Pod without a role read the object:\n%s", log)
	}
}

func ptrTo[T any](v T) *T { return &v }
