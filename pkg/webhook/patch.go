package webhook

import (
	"encoding/json"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// patch diffs the Pod as decoded against the mutated Pod. Both sides are the
// typed Pod re-encoded, so fields the compiled API does not know (a newer
// cluster's) are absent from both and the patch never touches them: applied
// to the raw object the API server sent, it only adds what we added.
//
// The JSON patch diff decodes both documents into generic maps, which was
// most of the handler's time and allocations (docs/benchmarks.md). So when
// the mutation changed only what mutate.Apply is documented to change
// (container and init container env and volumeMounts, the Pod's volumes),
// only those parts are encoded and diffed. They are encoded under the same
// keys and at the same indices as in the whole Pod, and the diff emits add,
// remove and replace operations per key and per index, so the patch is the
// one the whole Pods would give. Any other change falls back to diffing the
// whole Pods.
func patch(original, mutated *corev1.Pod) (admission.Response, error) {
	var before, after any = original, mutated
	if onlyViewChanged(original, mutated) {
		before, after = views(original, mutated)
	}
	a, err := json.Marshal(before)
	if err != nil {
		return admission.Response{}, fmt.Errorf("encode pod: %w", err)
	}
	b, err := json.Marshal(after)
	if err != nil {
		return admission.Response{}, fmt.Errorf("encode mutated pod: %w", err)
	}
	return admission.PatchResponseFromRaw(a, b), nil
}

// podView is the part of a Pod that mutate.Apply changes, with the JSON
// names of corev1.Pod so patch paths are the same. List elements equal on
// both sides are encoded as null on both sides: the diff then skips them in
// place, at their index, without decoding them.
type podView struct {
	Spec podSpecView `json:"spec"`
}

type podSpecView struct {
	InitContainers []containerView `json:"initContainers,omitempty"`
	Containers     []containerView `json:"containers,omitempty"`
	Volumes        []any           `json:"volumes,omitempty"`
}

type containerView struct {
	Env          []any `json:"env,omitempty"`
	VolumeMounts []any `json:"volumeMounts,omitempty"`
}

// views returns the views of original and mutated.
func views(original, mutated *corev1.Pod) (podView, podView) {
	var a, b podView
	a.Spec.InitContainers, b.Spec.InitContainers = containerViews(original.Spec.InitContainers, mutated.Spec.InitContainers)
	a.Spec.Containers, b.Spec.Containers = containerViews(original.Spec.Containers, mutated.Spec.Containers)
	a.Spec.Volumes, b.Spec.Volumes = listViews(original.Spec.Volumes, mutated.Spec.Volumes)
	return a, b
}

// containerViews takes lists of equal length (onlyViewChanged checked).
func containerViews(original, mutated []corev1.Container) ([]containerView, []containerView) {
	if original == nil {
		return nil, nil
	}
	a, b := make([]containerView, len(original)), make([]containerView, len(mutated))
	for i := range original {
		a[i].Env, b[i].Env = listViews(original[i].Env, mutated[i].Env)
		a[i].VolumeMounts, b[i].VolumeMounts = listViews(original[i].VolumeMounts, mutated[i].VolumeMounts)
	}
	return a, b
}

// listViews keeps nil as nil (absent, as omitempty encodes the Pod) and
// puts null on both sides where the elements at an index are equal.
func listViews[T any](original, mutated []T) ([]any, []any) {
	view := func(l []T) []any {
		if l == nil {
			return nil
		}
		out := make([]any, len(l))
		for i := range l {
			out[i] = &l[i]
		}
		return out
	}
	a, b := view(original), view(mutated)
	for i := range min(len(a), len(b)) {
		if reflect.DeepEqual(&original[i], &mutated[i]) {
			a[i], b[i] = nil, nil
		}
	}
	return a, b
}

// onlyViewChanged reports whether mutated equals original once its
// containers' env and volumeMounts and its volumes are put back to the
// original's. A false answer only costs the whole diff, so this compares
// structurally (reflect.DeepEqual); mutated is a deep copy of original.
func onlyViewChanged(original, mutated *corev1.Pod) bool {
	if len(original.Spec.InitContainers) != len(mutated.Spec.InitContainers) ||
		len(original.Spec.Containers) != len(mutated.Spec.Containers) {
		return false
	}
	rest := *mutated
	rest.Spec.InitContainers = restoreView(mutated.Spec.InitContainers, original.Spec.InitContainers)
	rest.Spec.Containers = restoreView(mutated.Spec.Containers, original.Spec.Containers)
	rest.Spec.Volumes = original.Spec.Volumes
	return reflect.DeepEqual(&rest, original)
}

func restoreView(mutated, original []corev1.Container) []corev1.Container {
	if mutated == nil {
		return nil
	}
	out := make([]corev1.Container, len(mutated))
	for i, c := range mutated {
		c.Env, c.VolumeMounts = original[i].Env, original[i].VolumeMounts
		out[i] = c
	}
	return out
}
