package mutate

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// withSpareCapacity gives every list of pod room to grow in place, where an
// append that forgot to copy would write into pod's memory.
func withSpareCapacity(pod *corev1.Pod) *corev1.Pod {
	grow := func(cs []corev1.Container) []corev1.Container {
		cs = append(make([]corev1.Container, 0, 2*len(cs)), cs...)
		for i := range cs {
			cs[i].Env = append(make([]corev1.EnvVar, 0, 2*len(cs[i].Env)+4), cs[i].Env...)
			cs[i].VolumeMounts = append(make([]corev1.VolumeMount, 0, 2*len(cs[i].VolumeMounts)+2), cs[i].VolumeMounts...)
		}
		return cs
	}
	pod.Spec.InitContainers = grow(pod.Spec.InitContainers)
	pod.Spec.Containers = grow(pod.Spec.Containers)
	pod.Spec.Volumes = append(make([]corev1.Volume, 0, 2*len(pod.Spec.Volumes)+2), pod.Spec.Volumes...)
	return pod
}

// TestApplyLeavesPodAlone: Apply changes nothing of the Pod it is given,
// even run concurrently on one Pod (go test -race), whose lists all have
// room to grow in place.
func TestApplyLeavesPodAlone(t *testing.T) {
	plans := map[string]identity.Plan{
		"service account token": {RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com",
			ExpirationSeconds: 3600, Region: "us-east-1", RegionalSTS: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"},
		"profiles": {RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", ExpirationSeconds: 3600,
			MountPath:         "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			Profiles:          []identity.Profile{{Name: "writer", RoleARN: "arn:aws:iam::111122223333:role/writer"}},
			ContainerProfiles: map[string]string{"app-1": "writer"}},
		"spiffe profiles": {RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			TokenSource: identity.TokenSourceSPIFFE, SPIFFE: identity.SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock"},
			Profiles:          []identity.Profile{{Name: "writer", RoleARN: "arn:aws:iam::111122223333:role/writer"}},
			ContainerProfiles: map[string]string{"app-1": "writer"}},
		"spiffe": {RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			TokenSource: identity.TokenSourceSPIFFE, SPIFFE: identity.SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock"}},
	}
	for name, plan := range plans {
		t.Run(name, func(t *testing.T) {
			pod := withSpareCapacity(benchPod(1, 2, 5))
			pod.Annotations = map[string]string{"example.com/a": "1"}
			pod.Spec.InitContainers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
			before := pod.DeepCopy()
			var wg sync.WaitGroup
			results := make([]*corev1.Pod, 4)
			for i := range results {
				wg.Go(func() { results[i], _ = Apply(pod, plan) })
			}
			wg.Wait()
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Fatalf("Apply changed its input (-before +after):\n%s", diff)
			}
			for _, got := range results[1:] {
				if diff := cmp.Diff(results[0], got); diff != "" {
					t.Fatalf("concurrent Applies disagree:\n%s", diff)
				}
			}
			if cmp.Equal(before, results[0]) {
				t.Fatal("Apply changed nothing; the test needs a plan that mutates")
			}

			// Nor does the result share room to grow with the input: growing
			// the input in place leaves the result as it was.
			mutated := results[0].DeepCopy()
			sentinel := func(cs []corev1.Container) {
				for i := range cs {
					_ = append(cs[i].Env, corev1.EnvVar{Name: "SENTINEL"})
					_ = append(cs[i].VolumeMounts, corev1.VolumeMount{Name: "sentinel"})
				}
				_ = append(cs, corev1.Container{Name: "sentinel"})
			}
			sentinel(pod.Spec.InitContainers)
			sentinel(pod.Spec.Containers)
			_ = append(pod.Spec.Volumes, corev1.Volume{Name: "sentinel"})
			if diff := cmp.Diff(mutated, results[0]); diff != "" {
				t.Fatalf("growing the input changed the result:\n%s", diff)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestScratchAppliesAsApply: a Scratch used again and again, on Pods small
// and large and with every plan, gives what Apply gives on its own, and
// leaves the input alone.
func TestScratchAppliesAsApply(t *testing.T) {
	plans := []identity.Plan{
		{RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", ExpirationSeconds: 3600,
			Region: "us-east-1", RegionalSTS: true, SessionName: identity.SessionNamePod, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"},
		{RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", ExpirationSeconds: 3600,
			MountPath:         "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			Profiles:          []identity.Profile{{Name: "writer", RoleARN: "arn:aws:iam::111122223333:role/writer"}},
			ContainerProfiles: map[string]string{"app-1": "writer"}},
		{RoleARN: "arn:aws:iam::111122223333:role/app", Audience: "sts.amazonaws.com", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			TokenSource: identity.TokenSourceSPIFFE, SPIFFE: identity.SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock"}},
	}
	bare := benchPod(0, 3, 0)
	for i := range bare.Spec.Containers {
		bare.Spec.Containers[i].VolumeMounts = nil
	}
	bare.Spec.Volumes = nil
	pods := []*corev1.Pod{benchPod(1, 2, 5), benchPod(0, 20, 10), bare, benchPod(2, 1, 1), withSpareCapacity(benchPod(1, 2, 5))}
	var s Scratch
	for round := range 3 {
		for _, pod := range pods {
			for _, plan := range plans {
				before := pod.DeepCopy()
				want, wantWarnings := Apply(pod, plan)
				got, gotWarnings := s.Apply(pod, plan)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("round %d: Scratch.Apply differs from Apply (-Apply +Scratch.Apply):\n%s", round, diff)
				}
				if diff := cmp.Diff(wantWarnings, gotWarnings); diff != "" {
					t.Fatalf("round %d: warnings differ:\n%s", round, diff)
				}
				if diff := cmp.Diff(before, pod); diff != "" {
					t.Fatalf("round %d: Scratch.Apply changed its input:\n%s", round, diff)
				}
				s.Reset()
			}
		}
	}
}
