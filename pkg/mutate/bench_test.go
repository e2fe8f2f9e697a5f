package mutate

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// benchPod has the given number of init containers and containers, each with
// envPerContainer env vars and two mounts, and three volumes.
func benchPod(initContainers, containers, envPerContainer int) *corev1.Pod {
	container := func(name string) corev1.Container {
		c := corev1.Container{
			Name:  name,
			Image: "registry.example/" + name + ":1.0",
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/app"},
				{Name: "cache", MountPath: "/cache"},
			},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			}},
		}
		for i := range envPerContainer {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: fmt.Sprintf("value-%d", i)})
		}
		return c
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app-7d9c", Namespace: "team-a", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	for i := range initContainers {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, container(fmt.Sprintf("init-%d", i)))
	}
	for i := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, container(fmt.Sprintf("app-%d", i)))
	}
	return pod
}

var benchPlan = identity.Plan{
	RoleARN:           "arn:aws:iam::111122223333:role/app",
	Audience:          "sts.amazonaws.com",
	ExpirationSeconds: 86400,
	Region:            "us-east-1",
	RegionalSTS:       true,
	MountPath:         "/var/run/secrets/eks.amazonaws.com/serviceaccount",
}

// BenchmarkApply is the mutation alone, without decode or patch: a typical
// Pod (1 init container, 2 containers, 5 env vars each) and a large one (20
// containers, 200 env vars in all).
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		name string
		pod  *corev1.Pod
	}{
		{"typical", benchPod(1, 2, 5)},
		{"large", benchPod(0, 20, 10)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if out, _ := Apply(bc.pod, benchPlan); len(out.Spec.Volumes) != len(bc.pod.Spec.Volumes)+1 {
				b.Fatalf("pod %s got no token volume", bc.name)
			}
			b.ReportAllocs()
			for b.Loop() {
				Apply(bc.pod, benchPlan)
			}
		})
	}
}
