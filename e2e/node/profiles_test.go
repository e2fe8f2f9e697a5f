package node

import (
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// A Deployment whose container asks for a profile: the kubelet projects
// the Pod's irsa-webhook.io/aws-config annotation into the token volume
// next to the token, and the SDK in the container, with AWS_PROFILE and
// AWS_CONFIG_FILE but no AWS_ROLE_ARN, assumes the profile's role through
// that file and reads the object. (Which role may do what is proven in
// scenarios, where an IAM stand-in tells roles apart; MinIO alone decides
// by the token's sub.) The test's name is short: the stack's directory is
// named after it and holds unix sockets, whose paths are bounded.
func TestWorkloadReadsS3WithAProfile(t *testing.T) {
	s := startNode(t)
	ctx := testContext(t)
	c := s.APIServer.Client
	const ns, sa, role = "workload-profiles", "reader", "arn:aws:iam::111122223333:role/e2e-profile-reader"
	workloadNamespace(t, ctx, s, ns, sa, map[string]string{identity.Profiles: "reports=" + role})
	d := s.Node.Workload("s3get", sa, 5*time.Second, ptrTo[int64](1000))
	d.Spec.Template.Annotations = map[string]string{identity.ContainerProfiles: "app=reports"}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	pod, err := harness.RunningPod(ctx, c, ns, "s3get", podTimeout)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[mutate.EnvProfile] != "reports" || env[mutate.EnvConfigFile] == "" || env[mutate.EnvRoleARN] != "" {
		t.Fatalf("container env %v, want AWS_PROFILE=reports and AWS_CONFIG_FILE without AWS_ROLE_ARN", env)
	}
	log, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, readLine)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, "failed") {
		t.Errorf("a read failed before one succeeded:\n%s", log)
	}
	// The file the SDK read is the kubelet's projection of the annotation.
	got, err := os.ReadFile(s.Node.TokenFile(pod, mutate.VolumeName, mutate.ConfigFile))
	if err != nil {
		t.Fatalf("kubelet's config file: %v", err)
	}
	if want := pod.Annotations[identity.AWSConfig]; string(got) != want || !strings.Contains(want, "role_arn = "+role) {
		t.Errorf("kubelet's config file:\n%s\nwant the pod's annotation, with the profile's role:\n%s", got, want)
	}
}
