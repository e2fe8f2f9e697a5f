package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// patch returns the JSON patch that turns original into mutated, where
// mutated is mutate.Apply's result. Apply only appends: to each container's
// and init container's env and volumeMounts, to the Pod's volumes and to its
// init containers. So the patch adds the appended elements at their
// indices, or the whole list where the original had none (absent, null or
// empty: "add" sets a member whatever it held). Applied to the raw object
// the API server sent, it touches nothing else, not even fields the
// compiled API does not know.
//
// It is the patch the JSON patch diff of the two whole Pods gives
// (TestPatchEqualsWholeDiff), without encoding both Pods and decoding them
// into generic maps, which was most of the handler's time and allocations
// (docs/benchmarks.md). That Apply changes nothing else is tested over every
// golden case under several plans; a mutation that removed something is
// refused here rather than half described. An empty patch is nil.
func patch(original, mutated *corev1.Pod) ([]byte, error) {
	if len(mutated.Spec.Containers) != len(original.Spec.Containers) {
		return nil, fmt.Errorf("mutation changed the number of containers from %d to %d; only additions can be patched",
			len(original.Spec.Containers), len(mutated.Spec.Containers))
	}
	// Apply adds at most a few operations per container and two lists.
	p := patchBuilder{ops: make([]operation, 0, 3*(len(mutated.Spec.InitContainers)+len(mutated.Spec.Containers))+2)}
	p.containers("/spec/initContainers/", original.Spec.InitContainers, mutated.Spec.InitContainers)
	p.containers("/spec/containers/", original.Spec.Containers, mutated.Spec.Containers)
	appended(&p, "/spec/initContainers", original.Spec.InitContainers, mutated.Spec.InitContainers)
	appended(&p, "/spec/volumes", original.Spec.Volumes, mutated.Spec.Volumes)
	if p.err != nil || len(p.ops) == 0 {
		return nil, p.err
	}
	b, err := json.Marshal(p.ops)
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	return b, nil
}

type patchBuilder struct {
	ops []operation
	err error
}

// operation is one JSON patch operation. It is encoded as it is, where
// jsonpatch.Operation's own encoder formats and then re-scans each one: that
// was half the cost of encoding the response.
type operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// containers adds what was appended to the env and volumeMounts of the
// containers both lists have; prefix ends in "/".
func (p *patchBuilder) containers(prefix string, original, mutated []corev1.Container) {
	for i := range min(len(original), len(mutated)) {
		o, m := &original[i], &mutated[i]
		if len(m.Env) == len(o.Env) && len(m.VolumeMounts) == len(o.VolumeMounts) {
			continue
		}
		path := prefix + strconv.Itoa(i)
		appended(p, path+"/env", o.Env, m.Env)
		appended(p, path+"/volumeMounts", o.VolumeMounts, m.VolumeMounts)
	}
}

// appended adds the elements of mutated past the length of original, the
// list at path. A shorter list is a removal, which is not ours to make.
func appended[T any](p *patchBuilder, path string, original, mutated []T) {
	switch {
	case len(mutated) < len(original):
		p.err = fmt.Errorf("mutation removed elements of %s; only additions can be patched", path)
	case len(mutated) == len(original):
	case len(original) == 0:
		p.ops = append(p.ops, operation{"add", path, mutated})
	default:
		for i := len(original); i < len(mutated); i++ {
			p.ops = append(p.ops, operation{"add", path + "/" + strconv.Itoa(i), &mutated[i]})
		}
	}
}
