package webhook

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// wholeDiff is the patch of the whole re-encoded Pods, which patch must
// reproduce.
func wholeDiff(t *testing.T, original, mutated *corev1.Pod) []jsonpatch.Operation {
	t.Helper()
	a, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(mutated)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return sortedOps(ops)
}

func sortedOps(ops []jsonpatch.Operation) []jsonpatch.Operation {
	sort.Sort(jsonpatch.ByPath(ops))
	return ops
}

func patchOps(t *testing.T, original, mutated *corev1.Pod) []jsonpatch.Operation {
	t.Helper()
	resp, err := patch(original, mutated)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed {
		t.Fatalf("patch response not allowed: %v", resp.Result)
	}
	return sortedOps(resp.Patches)
}

func decodePod(t *testing.T, raw []byte) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestPatchEqualsWholeDiff: diffing only what the mutation changes gives
// the same operations as diffing the whole Pods, for every golden input and
// the benchmark Pods, with containers skipped or not.
func TestPatchEqualsWholeDiff(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	pods := map[string][]byte{"bench-typical": typicalPod(""), "bench-large": largePod("")}
	for _, dir := range dirs {
		pods[filepath.Base(dir)] = readFile(t, filepath.Join(dir, "pod.json"))
	}
	plans := map[string]identity.Plan{
		"all containers": {RoleARN: testARN, Audience: "sts.amazonaws.com", ExpirationSeconds: 86400,
			Region: "us-east-1", RegionalSTS: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"},
		"one skipped": {RoleARN: testARN, Audience: "sts.amazonaws.com", ExpirationSeconds: 3600,
			MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", SkipContainers: map[string]bool{"app": true, "app-1": true}},
	}
	for name, raw := range pods {
		for planName, plan := range plans {
			t.Run(name+"/"+planName, func(t *testing.T) {
				original := decodePod(t, raw)
				mutated, _ := mutate.Apply(original, plan)
				want := wholeDiff(t, original, mutated)
				if diff := cmp.Diff(want, patchOps(t, original, mutated)); diff != "" {
					t.Errorf("patch differs from the whole diff (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestPatchOutsideViewFallsBack: a change outside containers' env and
// mounts and the Pod's volumes is still in the patch.
func TestPatchOutsideViewFallsBack(t *testing.T) {
	for name, change := range map[string]func(*corev1.Pod){
		"label":            func(p *corev1.Pod) { p.Labels["added"] = "yes" },
		"container image":  func(p *corev1.Pod) { p.Spec.Containers[1].Image = "other:2" },
		"container added":  func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "new"}) },
		"init env changed": func(p *corev1.Pod) { p.Spec.InitContainers[0].Env[0].Value = "changed" },
		"volume replaced":  func(p *corev1.Pod) { p.Spec.Volumes[0].ConfigMap.Name = "other" },
	} {
		t.Run(name, func(t *testing.T) {
			original := decodePod(t, typicalPod(""))
			mutated := original.DeepCopy()
			change(mutated)
			want := wholeDiff(t, original, mutated)
			if len(want) == 0 {
				t.Fatal("test change made no difference")
			}
			if diff := cmp.Diff(want, patchOps(t, original, mutated)); diff != "" {
				t.Errorf("patch differs from the whole diff (-want +got):\n%s", diff)
			}
		})
	}
}
