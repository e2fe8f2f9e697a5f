package admissionjson

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// wholeDiff is the JSON patch diff of the whole re-encoded Pods, which
// patch must reproduce, as generic JSON sorted by path.
func wholeDiff(t *testing.T, original, mutated *corev1.Pod) []any {
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
	return genericOps(t, ops)
}

// genericOps sorts ops by path and turns their values into generic JSON, so
// that typed values compare equal to the diff's decoded ones.
func genericOps(t *testing.T, ops []jsonpatch.Operation) []any {
	t.Helper()
	if len(ops) == 0 {
		return nil
	}
	sort.Stable(jsonpatch.ByPath(ops))
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedPatch is a JSON patch as generic JSON, sorted by path.
func sortedPatch(t *testing.T, patch []byte) []any {
	t.Helper()
	if patch == nil {
		return nil
	}
	var ops []jsonpatch.Operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch is not a JSON patch: %v\n%s", err, patch)
	}
	return genericOps(t, ops)
}

func decodeWholePod(t *testing.T, raw []byte) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// mutationCases are every golden input and the benchmark Pods, each under
// every kind of plan.
func mutationCases(t *testing.T) map[string]struct {
	raw  []byte
	plan identity.Plan
} {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(webhookTestdata, "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	pods := map[string][]byte{"bench-typical": typicalPod(""), "bench-large": largePod("")}
	for _, dir := range dirs {
		pods[filepath.Base(dir)] = readFile(t, filepath.Join(dir, "pod.json"))
	}
	plans := mutationPlans()
	cases := map[string]struct {
		raw  []byte
		plan identity.Plan
	}{}
	for name, raw := range pods {
		for planName, plan := range plans {
			cases[name+"/"+planName] = struct {
				raw  []byte
				plan identity.Plan
			}{raw, plan}
		}
	}
	return cases
}

// mutationPlans are every kind of plan the patch tests mutate Pods with.
func mutationPlans() map[string]identity.Plan {
	const mountPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	return map[string]identity.Plan{
		"all containers": {RoleARN: testARN, Audience: "sts.amazonaws.com", ExpirationSeconds: 86400,
			Region: "us-east-1", RegionalSTS: true, MountPath: mountPath},
		"one skipped": {RoleARN: testARN, Audience: "sts.amazonaws.com", ExpirationSeconds: 3600,
			MountPath: mountPath, SkipContainers: map[string]bool{"app": true, "app-1": true}},
		"spiffe": {RoleARN: testARN, Audience: "sts.amazonaws.com", MountPath: mountPath, TokenSource: identity.TokenSourceSPIFFE,
			SPIFFE: identity.SPIFFE{ID: "spiffe://example.org/app", HelperImage: "helper:1", SocketName: "agent.sock"}},
		"profiles": {RoleARN: testARN, Audience: "sts.amazonaws.com", ExpirationSeconds: 3600, Region: "eu-west-1", RegionalSTS: true,
			SessionName: identity.SessionNamePod, MountPath: mountPath,
			Profiles:          []identity.Profile{{Name: "reader", RoleARN: testARN + "-2"}, {Name: "writer", RoleARN: testARN + "-3"}},
			ContainerProfiles: map[string]string{"app": "writer", "app-1": "reader", "init-0": "writer"}},
		"spiffe profiles": {RoleARN: testARN, Audience: "sts.amazonaws.com", MountPath: mountPath, TokenSource: identity.TokenSourceSPIFFE,
			SPIFFE:            identity.SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock"},
			Profiles:          []identity.Profile{{Name: "writer", RoleARN: testARN + "-3"}},
			ContainerProfiles: map[string]string{"app": "writer", "init-0": "writer"}},
		"spiffe host path": {RoleARN: testARN, Audience: "sts.amazonaws.com", MountPath: mountPath, TokenSource: identity.TokenSourceSPIFFE,
			SPIFFE: identity.SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock", SocketHostPath: "/run/spire/sockets"}},
	}
}

// TestPatchEqualsWholeDiff: the patch of what mutate.Apply added is the
// whole Pods' diff, for every mutation case. Where Apply inserted the SPIFFE
// token helper before existing init containers (which the diff would
// describe as a replacement of every one of them), it is one add of the
// helper at index 0 followed by the diff from the original with the helper
// inserted. This is also what holds Apply to adding: a change anywhere else
// would be in the diff and not in the patch. And the patch, applied in its
// order to the original, is the mutated Pod.
func TestPatchEqualsWholeDiff(t *testing.T) {
	for name, tc := range mutationCases(t) {
		t.Run(name, func(t *testing.T) {
			original := decodeWholePod(t, tc.raw)
			mutated, _ := mutate.Apply(original, tc.plan)
			ops, err := operationsPatch(original, mutated)
			if err != nil {
				t.Fatal(err)
			}
			want := wholeDiff(t, original, mutated)
			if init := mutated.Spec.InitContainers; len(original.Spec.InitContainers) > 0 && len(init) > 0 &&
				init[0].Name == mutate.SVIDHelperName && original.Spec.InitContainers[0].Name != mutate.SVIDHelperName {
				shifted := original.DeepCopy()
				shifted.Spec.InitContainers = append([]corev1.Container{*init[0].DeepCopy()}, shifted.Spec.InitContainers...)
				insert := genericOps(t, []jsonpatch.Operation{jsonpatch.NewOperation("add", "/spec/initContainers/0", init[0])})
				want = append(insert, wholeDiff(t, shifted, mutated)...)
				if got := sortedPatch(t, ops); len(got) == 0 || !cmp.Equal(insert[0], firstOp(t, ops)) {
					t.Errorf("the helper's insertion is not the patch's first operation: %s", ops)
				}
			}
			if diff := cmp.Diff(sortOps(t, want), sortedPatch(t, ops)); diff != "" {
				t.Errorf("patch differs from the whole diff (-want +got):\n%s", diff)
			}
			if ops == nil {
				return
			}
			raw, err := json.Marshal(original)
			if err != nil {
				t.Fatal(err)
			}
			patched, err := applyOps(raw, ops)
			if err != nil {
				t.Fatalf("patch does not apply: %v\n%s", err, ops)
			}
			if diff := cmp.Diff(asJSON(t, mutated), asJSON(t, decodeWholePod(t, patched))); diff != "" {
				t.Errorf("original with the patch applied is not the mutated Pod (-mutated +patched):\n%s", diff)
			}
		})
	}
}

// asJSON is v as generic JSON, where an empty list and an absent one are
// the same, as they are to the API server.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstOp is the first operation of a JSON patch as generic JSON.
func firstOp(t *testing.T, patch []byte) any {
	t.Helper()
	var ops []any
	if err := json.Unmarshal(patch, &ops); err != nil || len(ops) == 0 {
		t.Fatalf("patch is not a JSON patch: %v\n%s", err, patch)
	}
	return ops[0]
}

// sortOps sorts generic JSON patch operations by path, as genericOps does.
func sortOps(t *testing.T, ops []any) []any {
	t.Helper()
	if len(ops) == 0 {
		return nil
	}
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	var typed []jsonpatch.Operation
	if err := json.Unmarshal(b, &typed); err != nil {
		t.Fatal(err)
	}
	return genericOps(t, typed)
}

// TestAdmittedPodCoversApply: the handler's partial Pod decode gives the
// same patch and warnings as the whole typed Pod, for every mutation case:
// Apply reads nothing the partial Pod leaves out.
func TestAdmittedPodCoversApply(t *testing.T) {
	for name, tc := range mutationCases(t) {
		t.Run(name, func(t *testing.T) {
			whole := decodeWholePod(t, tc.raw)
			partial, err := DecodePod(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			wantPod, wantWarnings := mutate.Apply(whole, tc.plan)
			gotPod, gotWarnings := mutate.Apply(partial, tc.plan)
			want, err := operationsPatch(whole, wantPod)
			if err != nil {
				t.Fatal(err)
			}
			got, err := operationsPatch(partial, gotPod)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("patch (-whole Pod +partial Pod):\n%s", diff)
			}
			if diff := cmp.Diff(wantWarnings, gotWarnings); diff != "" {
				t.Errorf("warnings (-whole Pod +partial Pod):\n%s", diff)
			}
			if mutate.IsWindows(whole) != mutate.IsWindows(partial) || podName(whole) != podName(partial) ||
				whole.Spec.ServiceAccountName != partial.Spec.ServiceAccountName || whole.Namespace != partial.Namespace ||
				!cmp.Equal(whole.Labels, partial.Labels) || !cmp.Equal(whole.Annotations, partial.Annotations) {
				t.Errorf("partial Pod's metadata, ServiceAccount or OS differ from the whole Pod's")
			}
		})
	}
}

// TestPatchRefusesRemovals: what an append-only patch cannot say is an
// error, not a patch that leaves it out.
func TestPatchRefusesRemovals(t *testing.T) {
	for name, change := range refusedChanges {
		t.Run(name, func(t *testing.T) {
			original := decodeWholePod(t, typicalPod(`,"annotations":{"example.com/a":"1"}`))
			mutated := original.DeepCopy()
			change(mutated)
			ops, err := operationsPatch(original, mutated)
			if err == nil {
				t.Fatalf("patch(%s) = %v, want an error", name, ops)
			}
			// A removal is refused as one, not reported as an encoding failure.
			if strings.Contains(err.Error(), "encode") {
				t.Errorf("patch(%s) error %q speaks of encoding", name, err)
			}
		})
	}
}

// refusedChanges are changes to the typical Pod (with an annotation) that
// are not additions.
var refusedChanges = map[string]func(*corev1.Pod){
	"container removed":      func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[1:] },
	"container added":        func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "new"}) },
	"init container removed": func(p *corev1.Pod) { p.Spec.InitContainers = nil },
	"env removed":            func(p *corev1.Pod) { p.Spec.Containers[1].Env = p.Spec.Containers[1].Env[1:] },
	"mount removed":          func(p *corev1.Pod) { p.Spec.InitContainers[0].VolumeMounts = nil },
	"volume removed":         func(p *corev1.Pod) { p.Spec.Volumes = p.Spec.Volumes[:1] },
	"init containers reordered": func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "second"})
		p.Spec.InitContainers[0], p.Spec.InitContainers[1] = p.Spec.InitContainers[1], p.Spec.InitContainers[0]
	},
	"a container inserted first that is not the helper": func(p *corev1.Pod) {
		p.Spec.InitContainers = append([]corev1.Container{{Name: "other"}}, p.Spec.InitContainers...)
	},
	// In-place edits: the lists keep their lengths, or only grow.
	"env value edited": func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Value = "other" },
	"env edited and appended": func(p *corev1.Pod) {
		p.Spec.Containers[0].Env[1].Name = "X"
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "Y"})
	},
	"env value from a field": func(p *corev1.Pod) {
		p.Spec.Containers[1].Env[0].ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}
	},
	"mount made read-only":     func(p *corev1.Pod) { p.Spec.InitContainers[0].VolumeMounts[0].ReadOnly = true },
	"image changed":            func(p *corev1.Pod) { p.Spec.Containers[1].Image = "other:2" },
	"init container resources": func(p *corev1.Pod) { p.Spec.InitContainers[0].Resources.Limits = corev1.ResourceList{} },
	"volume source changed":    func(p *corev1.Pod) { p.Spec.Volumes[1].EmptyDir.Medium = corev1.StorageMediumMemory },
	"volume renamed":           func(p *corev1.Pod) { p.Spec.Volumes[0].Name = "renamed" },
	"label added":              func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web", "new": "x"} },
	"name changed":             func(p *corev1.Pod) { p.Name = "other" },
	"node selector set":        func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"a": "b"} },
	"annotation edited": func(p *corev1.Pod) {
		p.Annotations = map[string]string{"example.com/a": "changed"}
	},
	"annotation removed": func(p *corev1.Pod) { p.Annotations = map[string]string{"example.com/b": "2"} },
}

// TestPatchAcceptsEqualCopies: a deep copy that changed nothing is no
// change, whatever memory it holds; one that only added is the additions.
func TestPatchAcceptsEqualCopies(t *testing.T) {
	original := decodeWholePod(t, typicalPod(""))
	if ops, err := operationsPatch(original, original.DeepCopy()); err != nil || ops != nil {
		t.Fatalf("Patch of an equal deep copy = %s, %v; want no patch", ops, err)
	}
	mutated := original.DeepCopy()
	mutated.Spec.Containers[0].Env = append(mutated.Spec.Containers[0].Env, corev1.EnvVar{Name: "ADDED", Value: "1"})
	ops, err := operationsPatch(original, mutated)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"add","path":"/spec/containers/0/env/5","value":{"name":"ADDED","value":"1"}}]`
	if string(ops) != want {
		t.Errorf("Patch = %s, want %s", ops, want)
	}
}

// TestPatchAddsAnnotations: metadata.annotations may be absent, null or
// empty (the whole map is added) or hold others (each new key is added,
// escaped as a JSON pointer); applied, the patch gives the mutated Pod's.
func TestPatchAddsAnnotations(t *testing.T) {
	added := map[string]string{"irsa-webhook.io/aws-config": "[default]\n", "a~b": "x"}
	for name, tc := range map[string]struct {
		annotations string
		want        string
	}{
		"absent": {"", `[{"op":"add","path":"/metadata/annotations","value":{"a~b":"x","irsa-webhook.io/aws-config":"[default]\n"}}]`},
		"null":   {`,"annotations":null`, `[{"op":"add","path":"/metadata/annotations","value":{"a~b":"x","irsa-webhook.io/aws-config":"[default]\n"}}]`},
		"empty":  {`,"annotations":{}`, `[{"op":"add","path":"/metadata/annotations","value":{"a~b":"x","irsa-webhook.io/aws-config":"[default]\n"}}]`},
		"others": {`,"annotations":{"example.com/a":"1"}`, `[{"op":"add","path":"/metadata/annotations/a~0b","value":"x"},{"op":"add","path":"/metadata/annotations/irsa-webhook.io~1aws-config","value":"[default]\n"}]`},
	} {
		t.Run(name, func(t *testing.T) {
			raw := typicalPod(tc.annotations)
			original := decodeWholePod(t, raw)
			mutated := *original
			mutated.Annotations = maps.Clone(original.Annotations)
			if mutated.Annotations == nil {
				mutated.Annotations = map[string]string{}
			}
			maps.Copy(mutated.Annotations, added)
			ops, err := operationsPatch(original, &mutated)
			if err != nil {
				t.Fatal(err)
			}
			if string(ops) != tc.want {
				t.Errorf("Patch = %s\nwant    %s", ops, tc.want)
			}
			patched, err := applyOps(raw, ops)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeWholePod(t, patched).Annotations; !cmp.Equal(got, mutated.Annotations) {
				t.Errorf("patched annotations %v, want %v", got, mutated.Annotations)
			}
		})
	}
}
