package admissionjson

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Patch returns the JSON patch that turns original into mutated, where
// mutated is mutate.Apply's result and spec is the original's spec as the
// request sent it (PodObject.Spec). It sets /spec whole, in one add, to
// spec with what Apply added spliced into its bytes (splice.go), followed
// by the annotation operations of operationsPatch. Every field of the
// spec the API server sent is kept as it sent it, even fields the compiled
// API does not know. One shallow operation rather than one per added
// element is what kube-apiserver applies fastest: gopkg.in/evanphx/json-patch.v4
// decodes and re-encodes every level an operation goes through
// (BenchmarkAPIServerPatch, docs/benchmarks.md). The price is in the API
// server's audit log: its patch.webhook.admission.k8s.io annotation now
// holds the whole spec rather than the few added elements.
//
// Where spec cannot be spliced exactly (see splicedPatch), the answer is
// operationsPatch's, which gives the same Pod. What Apply changed other
// than by adding is refused with an error either way. An empty patch is
// nil.
func Patch(spec []byte, original, mutated *corev1.Pod) ([]byte, error) {
	return patch(nil, spec, nil, original, mutated)
}

// patch is Patch with the spec's layout, if it is known (nil scans spec),
// written into dst's capacity when it fits.
func patch(dst, spec []byte, layout *rawSpec, original, mutated *corev1.Pod) ([]byte, error) {
	a, err := findAdditions(original, mutated)
	if err != nil {
		return nil, err
	}
	defer a.release() // the patch is written into buffers of its own
	if patch, ok := a.splicedPatch(dst, spec, layout); ok {
		return patch, nil
	}
	return a.operations(), nil
}

// operationsPatch is the patch of one operation per addition. Apply only
// adds: it adds annotations, appends to each container's and init
// container's env and volumeMounts and to the Pod's volumes, and inserts
// the SPIFFE token helper as the first init container. So the patch adds
// the new annotations and the appended elements at their indices, or the
// whole map or list where the original had none (absent, null or empty:
// "add" sets a member whatever it held), and the helper at
// /spec/initContainers/0 before anything else, which shifts the init
// containers the later operations name by their new indices. Applied to
// the raw object the API server sent, it touches nothing else, not even
// fields the compiled API does not know.
//
// It is the patch the JSON patch diff of the two whole Pods gives, or, with
// the helper inserted, that one add followed by the diff from the original
// with the helper inserted (TestPatchEqualsWholeDiff), without encoding both
// Pods and decoding them into generic maps, which was most of the handler's
// time and allocations (docs/benchmarks.md). Any other change (a removal, a
// reordering, a field or an element edited in place) is refused with an
// error rather than left out of the patch (see unchanged.go). An empty
// patch is nil.
func operationsPatch(original, mutated *corev1.Pod) ([]byte, error) {
	a, err := findAdditions(original, mutated)
	if err != nil {
		return nil, err
	}
	defer a.release()
	return a.operations(), nil
}

// additions are what Apply added to a Pod, checked to be nothing but
// additions and encoded once, for either shape of patch to write.
// Encoding a slice of operations with interface values took a fifth of the
// handler's time, most of it in reflection over the few small types Apply
// appends; those are written directly (appendEnvVar, appendVolumeMount,
// appendVolume for the token volume),
// and anything else is left to encoding/json.
type additions struct {
	original, mutated *corev1.Pod
	// values holds every added element's JSON, one after another; ends[i]
	// is where element i ends.
	values []byte
	ends   []int
	// helper is whether element 0 is the SPIFFE token helper, inserted as
	// the first init container.
	helper bool
	lists  []listAddition
	err    error
}

// listAddition is what was appended to one list of the spec.
type listAddition struct {
	// path is the list's JSON pointer in the patched Pod.
	path string
	// list is the spec's member holding it ("initContainers",
	// "containers" or "volumes"); of a container's env or volumeMounts,
	// container is the container's index in the original list and field
	// the member's name; container is -1 for the list itself.
	list      string
	container int
	field     string
	// from is the original's length, where the appended elements start: 0
	// sets the whole list. The elements are first to last-1 of values.
	from        int
	first, last int
}

// additionsPool keeps additions between admissions: they are dead once
// the patch is written from them, and were a tenth of the garbage of each.
var additionsPool = sync.Pool{New: func() any { return new(additions) }}

// release gives a back to the pool; nothing of it is to be used after.
func (a *additions) release() {
	if cap(a.values) > maxPooledBuffer {
		return
	}
	clear(a.lists) // their paths are this admission's
	*a = additions{values: a.values[:0], ends: a.ends[:0], lists: a.lists[:0]}
	additionsPool.Put(a)
}

// findAdditions finds and encodes what mutated adds to original, in the
// order of the operations: the helper, the env and volume mounts of the
// init containers and of the containers, the appended init containers,
// the volumes.
func findAdditions(original, mutated *corev1.Pod) (*additions, error) {
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
	// About 100 bytes an element, a few elements a container.
	n := 1 + len(mutated.Spec.InitContainers) + len(mutated.Spec.Containers)
	a := additionsPool.Get().(*additions)
	*a = additions{original: original, mutated: mutated, values: slices.Grow(a.values[:0], 400*n), ends: slices.Grow(a.ends[:0], 4*n),
		lists: slices.Grow(a.lists[:0], 2*n+2)}
	init, shift := mutated.Spec.InitContainers, 0
	if prepended(original.Spec.InitContainers, init) {
		if encode(a, appendJSON, &init[0]); a.err != nil {
			return nil, fmt.Errorf("encode the patch of /spec/initContainers/0: %w", a.err)
		}
		a.helper = true
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
	a.containers("initContainers", shift, original.Spec.InitContainers, init)
	a.containers("containers", 0, original.Spec.Containers, mutated.Spec.Containers)
	appended(a, listAddition{path: "/spec/initContainers", list: "initContainers", container: -1}, original.Spec.InitContainers, init, appendJSON)
	appended(a, listAddition{path: "/spec/volumes", list: "volumes", container: -1}, original.Spec.Volumes, mutated.Spec.Volumes, appendVolume)
	if a.err != nil {
		return nil, a.err
	}
	return a, nil
}

// encode appends v's JSON, written by enc, as the next element.
func encode[T any](a *additions, enc func([]byte, *T) ([]byte, error), v *T) {
	if a.err != nil {
		return
	}
	a.values, a.err = enc(a.values, v)
	a.ends = append(a.ends, len(a.values))
}

// element is element i's JSON.
func (a *additions) element(i int) []byte {
	from := 0
	if i > 0 {
		from = a.ends[i-1]
	}
	return a.values[from:a.ends[i]]
}

// appendElements appends the elements of l separated by commas.
func (a *additions) appendElements(dst []byte, l *listAddition) []byte {
	for i := l.first; i < l.last; i++ {
		if i > l.first {
			dst = append(dst, ',')
		}
		dst = append(dst, a.element(i)...)
	}
	return dst
}

// prepended reports whether mutated is original with the SPIFFE token
// helper inserted first, the one insertion Apply makes. Into an empty list
// it is an append like any other.
func prepended(original, mutated []corev1.Container) bool {
	return len(original) > 0 && len(mutated) == len(original)+1 &&
		mutated[0].Name == mutate.SVIDHelperName && original[0].Name != mutate.SVIDHelperName
}

// containers finds what was appended to the env and volumeMounts of the
// containers both lists have, container i being at index shift+i of the
// spec's member list in the patched Pod.
func (a *additions) containers(list string, shift int, original, mutated []corev1.Container) {
	prefix := "/spec/" + list + "/"
	for i := range min(len(original), len(mutated)) {
		if a.err != nil {
			return
		}
		o, m := &original[i], &mutated[i]
		if a.err = unchangedContainer(func() string { return prefix + strconv.Itoa(shift+i) }, o, m); a.err != nil {
			return
		}
		if len(m.Env) == len(o.Env) && len(m.VolumeMounts) == len(o.VolumeMounts) {
			continue
		}
		path := prefix + strconv.Itoa(shift+i)
		appended(a, listAddition{path: path + "/env", list: list, container: i, field: "env"}, o.Env, m.Env, appendEnvVar)
		appended(a, listAddition{path: path + "/volumeMounts", list: list, container: i, field: "volumeMounts"},
			o.VolumeMounts, m.VolumeMounts, appendVolumeMount)
	}
}

// appended adds l, the elements of mutated past the length of original,
// each written by enc. A shorter list is a removal, which is not ours to
// make.
func appended[T any](a *additions, l listAddition, original, mutated []T, enc func([]byte, *T) ([]byte, error)) {
	if a.err != nil || len(mutated) == len(original) {
		return
	}
	if len(mutated) < len(original) {
		a.err = fmt.Errorf("mutation removed elements of %s; only additions can be patched", l.path)
		return
	}
	l.from, l.first = len(original), len(a.ends)
	for i := len(original); i < len(mutated); i++ {
		encode(a, enc, &mutated[i])
	}
	if a.err != nil {
		a.err = fmt.Errorf("encode the patch of %s: %w", l.path, a.err)
		return
	}
	l.last = len(a.ends)
	a.lists = append(a.lists, l)
}

// operations writes one add per added element, or per list where the
// original had none ("add" sets the member whatever it held: absent, null
// or empty), then the annotations.
func (a *additions) operations() []byte {
	// About 50 bytes of operation an element.
	p := patchBuilder{buf: make([]byte, 0, len(a.values)+64*len(a.ends)+512)}
	if a.helper {
		p.op("/spec/initContainers", 0)
		p.buf = append(append(p.buf, a.element(0)...), '}')
	}
	for i := range a.lists {
		l := &a.lists[i]
		if l.from == 0 {
			p.op(l.path, -1)
			p.buf = append(a.appendElements(append(p.buf, '['), l), "]}"...)
			continue
		}
		for e := l.first; e < l.last; e++ {
			p.op(l.path, l.from+e-l.first)
			p.buf = append(append(p.buf, a.element(e)...), '}')
		}
	}
	return p.finish(a.original.Annotations, a.mutated.Annotations)
}

// patchBuilder writes a patch as it goes: each operation is
// {"op":"add","path":...,"value":...}.
type patchBuilder struct {
	buf []byte
}

// finish adds the annotations' operations and closes the patch, or
// returns nil if it has none.
func (p *patchBuilder) finish(original, mutated map[string]string) []byte {
	p.annotations(original, mutated)
	if len(p.buf) == 0 {
		return nil
	}
	return append(p.buf, ']')
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
