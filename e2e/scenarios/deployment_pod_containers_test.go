package scenarios

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Scenario 2: a Pod as a Deployment's ReplicaSet would create it, with an
// init container, a native sidecar and two app containers, one of them
// skipped by annotation. Every other container gets the credentials, and the
// sidecar and the app can each read the object.
func TestScenario2DeploymentPodWithInitContainersAndSidecar(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa = "team-b", "web"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)

	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-5d8f7c9b4-",
			Labels:       map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b4"},
			Annotations:  map[string]string{keys.Key(identity.SkipContainers): " metrics "},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			InitContainers: []corev1.Container{
				{Name: "migrate", Image: "registry.example/migrate:1"},
				{Name: "proxy", Image: "registry.example/proxy:1", RestartPolicy: &always},
			},
			Containers: []corev1.Container{
				{Name: "web", Image: "registry.example/web:1", Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}}},
				{Name: "metrics", Image: "registry.example/metrics:1"},
			},
		},
	}
	stored := createPod(t, ctx, s, ns, pod)
	checkInjected(t, stored, "migrate", "proxy", "web")

	metrics := container(t, stored, "metrics")
	if env := awsEnv(metrics); len(env) > 0 {
		t.Errorf("skipped container metrics has AWS env %v", env)
	}
	for _, m := range metrics.VolumeMounts {
		if m.Name == mutate.VolumeName {
			t.Errorf("skipped container metrics has the %s mount", mutate.VolumeName)
		}
	}
	if web := container(t, stored, "web"); len(web.Env) == 0 || web.Env[0].Name != "LOG_LEVEL" {
		t.Errorf("container web lost or reordered its own env: %v", web.Env)
	}

	for _, c := range []string{"proxy", "web"} {
		t.Run(c, func(t *testing.T) { wantObject(t, readObjectAs(t, ctx, s, stored, c)) })
	}
}
