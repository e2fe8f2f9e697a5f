package admissionjson

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Patch returns the JSON patch that turns original into mutated, where
// mutated is mutate.Apply's result. Apply only adds: it adds annotations,
// appends to each container's and init container's env and volumeMounts and
// to the Pod's volumes, and inserts the SPIFFE token helper as the first
// init container. So the patch adds the new annotations and the appended
// elements at their indices, or the whole map or list where the original
// had none (absent, null or empty: "add" sets a member whatever it held),
// and the helper at /spec/initContainers/0 before anything else, which
// shifts the init containers the later operations name by their new
// indices. Applied to the raw object the API server sent, it touches
// nothing else, not even fields the compiled API does not know.
//
// It is the patch the JSON patch diff of the two whole Pods gives, or, with
// the helper inserted, that one add followed by the diff from the original
// with the helper inserted (TestPatchEqualsWholeDiff), without encoding both
// Pods and decoding them into generic maps, which was most of the handler's
// time and allocations (docs/benchmarks.md). Any other change (a removal, a
// reordering, a field or an element edited in place) is refused with an
// error rather than left out of the patch (see unchanged.go). An empty
// patch is nil.
func Patch(original, mutated *corev1.Pod) ([]byte, error) {
	if len(mutated.Spec.Containers) != len(original.Spec.Containers) {
		return nil, fmt.Errorf("mutation changed the number of containers from %d to %d; only additions can be patched",
			len(original.Spec.Containers), len(mutated.Spec.Containers))
	}
	if err := unchangedPod(original, mutated); err != nil {
		return nil, err
	}
	if err := unchangedAnnotations(original.Annotations, mutated.Annotations); err != nil {
		return nil, err
	}
	if err := unchangedPrefix(original.Spec.Volumes, mutated.Spec.Volumes); err != nil {
		return nil, err.at("/spec/volumes")
	}
	// About 150 bytes an operation, a few operations a container.
	p := patchBuilder{buf: make([]byte, 0, 512*(1+len(mutated.Spec.InitContainers)+len(mutated.Spec.Containers)))}
	init, shift := mutated.Spec.InitContainers, 0
	if prepended(original.Spec.InitContainers, init) {
		p.op("/spec/initContainers", 0)
		p.buf, p.err = appendJSON(p.buf, &init[0])
		if p.err != nil {
			return nil, fmt.Errorf("encode the patch of /spec/initContainers/0: %w", p.err)
		}
		p.buf = append(p.buf, '}')
		init, shift = init[1:], 1
	}
	if len(init) < len(original.Spec.InitContainers) {
		return nil, fmt.Errorf("mutation removed elements of /spec/initContainers; only additions can be patched")
	}
	for i := range original.Spec.InitContainers {
		if original.Spec.InitContainers[i].Name != init[i].Name {
			return nil, fmt.Errorf("mutation reordered the init containers (%q is now where %q was); only additions can be patched",
				init[i].Name, original.Spec.InitContainers[i].Name)
		}
	}
	p.containers("/spec/initContainers/", shift, original.Spec.InitContainers, init)
	p.containers("/spec/containers/", 0, original.Spec.Containers, mutated.Spec.Containers)
	appended(&p, "/spec/initContainers", original.Spec.InitContainers, init, appendJSON)
	appended(&p, "/spec/volumes", original.Spec.Volumes, mutated.Spec.Volumes, appendJSON)
	if p.err == nil {
		p.annotations(original.Annotations, mutated.Annotations)
	}
	if p.err != nil || len(p.buf) == 0 {
		return nil, p.err
	}
	return append(p.buf, ']'), nil
}

// patchBuilder writes the patch as it goes: each operation is
// {"op":"add","path":...,"value":...}. Encoding a slice of operations with
// interface values took a fifth of the handler's time, most of it in
// reflection over the few small types Apply appends; those are written
// directly (appendEnvVar, appendVolumeMount), and anything else is left to
// encoding/json.
type patchBuilder struct {
	buf []byte
	err error
}

// prepended reports whether mutated is original with the SPIFFE token
// helper inserted first, the one insertion Apply makes. Into an empty list
// it is an append like any other.
func prepended(original, mutated []corev1.Container) bool {
	return len(original) > 0 && len(mutated) == len(original)+1 &&
		mutated[0].Name == mutate.SVIDHelperName && original[0].Name != mutate.SVIDHelperName
}

// containers adds what was appended to the env and volumeMounts of the
// containers both lists have, container i being at index shift+i in the
// patched Pod; prefix ends in "/".
func (p *patchBuilder) containers(prefix string, shift int, original, mutated []corev1.Container) {
	for i := range min(len(original), len(mutated)) {
		if p.err != nil {
			return
		}
		o, m := &original[i], &mutated[i]
		if p.err = unchangedContainer(func() string { return prefix + strconv.Itoa(shift+i) }, o, m); p.err != nil {
			return
		}
		if len(m.Env) == len(o.Env) && len(m.VolumeMounts) == len(o.VolumeMounts) {
			continue
		}
		path := prefix + strconv.Itoa(shift+i)
		appended(p, path+"/env", o.Env, m.Env, appendEnvVar)
		appended(p, path+"/volumeMounts", o.VolumeMounts, m.VolumeMounts, appendVolumeMount)
	}
}

// annotations adds the annotations mutated has and original does not:
// the whole map when original has none (metadata.annotations may be absent
// or null), else one operation each, in key order.
func (p *patchBuilder) annotations(original, mutated map[string]string) {
	if len(mutated) == len(original) {
		return // unchangedAnnotations: the same map
	}
	keys := make([]string, 0, len(mutated)-len(original))
	for k := range mutated {
		if _, ok := original[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(original) == 0 {
		p.op("/metadata/annotations", -1)
		p.buf = append(p.buf, '{')
		for i, k := range keys {
			if i > 0 {
				p.buf = append(p.buf, ',')
			}
			p.buf = append(appendString(p.buf, k), ':')
			p.buf = appendString(p.buf, mutated[k])
		}
		p.buf = append(p.buf, "}}"...)
		return
	}
	for _, k := range keys {
		p.op("/metadata/annotations/"+escapePointer(k), -1)
		p.buf = append(appendString(p.buf, mutated[k]), '}')
	}
}

// escapePointer escapes a member name for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// appended adds the elements of mutated past the length of original, the
// list at path, each written by enc. A shorter list is a removal, which is
// not ours to make.
func appended[T any](p *patchBuilder, path string, original, mutated []T, enc func([]byte, *T) ([]byte, error)) {
	if p.err != nil {
		return
	}
	var err error
	switch {
	case len(mutated) < len(original):
		p.err = fmt.Errorf("mutation removed elements of %s; only additions can be patched", path)
		return
	case len(mutated) == len(original):
	case len(original) == 0:
		// "add" sets the member whatever it held: absent, null or empty.
		p.op(path, -1)
		p.buf = append(p.buf, '[')
		for i := 0; i < len(mutated) && err == nil; i++ {
			if i > 0 {
				p.buf = append(p.buf, ',')
			}
			p.buf, err = enc(p.buf, &mutated[i])
		}
		p.buf = append(p.buf, "]}"...)
	default:
		for i := len(original); i < len(mutated) && err == nil; i++ {
			p.op(path, i)
			p.buf, err = enc(p.buf, &mutated[i])
			p.buf = append(p.buf, '}')
		}
	}
	if err != nil {
		p.err = fmt.Errorf("encode the patch of %s: %w", path, err)
	}
}

// op starts an add operation at path, or at path/index when index is not
// negative, up to its value.
func (p *patchBuilder) op(path string, index int) {
	if len(p.buf) == 0 {
		p.buf = append(p.buf, '[')
	} else {
		p.buf = append(p.buf, ',')
	}
	p.buf = append(p.buf, `{"op":"add","path":`...)
	p.buf = appendString(p.buf, path)
	if index >= 0 {
		// Reopen the string to add the index.
		p.buf = append(p.buf[:len(p.buf)-1], '/')
		p.buf = append(strconv.AppendInt(p.buf, int64(index), 10), '"')
	}
	p.buf = append(p.buf, `,"value":`...)
}
