package admissionjson

import (
	"fmt"
	"reflect"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
)

// The patch describes additions only, so whatever else differs between the
// original and the mutated Pod would be dropped without a word. These
// checks refuse it instead: every field outside the lists the patch
// appends to, and every element those lists already had, must be as it was.
//
// They are cheap where Apply shares memory with the original (its copy
// keeps every field it leaves alone): equal bytes are equal values. Bytes
// that differ (a deep copy, padding) are compared by value with
// reflect.DeepEqual, so the answer never depends on how the copy was made.

// span is a byte range [from, to) of a struct that is compared elsewhere.
type span struct{ from, to uintptr }

// sameExcept reports whether *a and *b are equal outside the holes, which
// are sorted and do not overlap; blank clears the holes of a copy for the
// comparison by value.
func sameExcept[T any](a, b *T, blank func(*T), holes ...span) bool {
	size := unsafe.Sizeof(*a)
	ab := unsafe.Slice((*byte)(unsafe.Pointer(a)), size)
	bb := unsafe.Slice((*byte)(unsafe.Pointer(b)), size)
	at := uintptr(0)
	same := true
	for _, h := range holes {
		if string(ab[at:h.from]) != string(bb[at:h.from]) {
			same = false
			break
		}
		at = h.to
	}
	if same && string(ab[at:]) == string(bb[at:]) {
		return true
	}
	return equalBlanked(a, b, blank)
}

// equalBlanked compares copies of *a and *b with their holes cleared. It is
// its own function so that only this slow path moves the copies to the
// heap.
//
//go:noinline
func equalBlanked[T any](a, b *T, blank func(*T)) bool {
	ac, bc := *a, *b
	blank(&ac)
	blank(&bc)
	return reflect.DeepEqual(ac, bc)
}

// sameValue reports whether *a and *b are equal.
func sameValue[T any](a, b *T) bool {
	return sameExcept(a, b, noHoles[T])
}

func noHoles[T any](*T) {}

func field(offset, size uintptr) span { return span{offset, offset + size} }

// The layouts whose field offsets name the holes.
var (
	podLayout       corev1.Pod
	containerLayout corev1.Container
	specAt          = unsafe.Offsetof(podLayout.Spec)
	listSize        = unsafe.Sizeof(podLayout.Spec.Volumes)
	// podHoles are what Patch describes of a Pod, in address order.
	podHoles = sortedSpans(
		field(unsafe.Offsetof(podLayout.ObjectMeta)+unsafe.Offsetof(podLayout.Annotations), unsafe.Sizeof(podLayout.Annotations)),
		field(specAt+unsafe.Offsetof(podLayout.Spec.Volumes), listSize),
		field(specAt+unsafe.Offsetof(podLayout.Spec.InitContainers), listSize),
		field(specAt+unsafe.Offsetof(podLayout.Spec.Containers), listSize),
	)
	// containerHoles are what Patch describes of a container.
	containerHoles = sortedSpans(
		field(unsafe.Offsetof(containerLayout.Env), unsafe.Sizeof(containerLayout.Env)),
		field(unsafe.Offsetof(containerLayout.VolumeMounts), unsafe.Sizeof(containerLayout.VolumeMounts)),
	)
)

func sortedSpans(s ...span) []span {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j].from < s[i].from {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func blankPod(p *corev1.Pod) {
	p.Annotations, p.Spec.Volumes, p.Spec.InitContainers, p.Spec.Containers = nil, nil, nil, nil
}

func blankContainer(c *corev1.Container) { c.Env, c.VolumeMounts = nil, nil }

// unchangedPod: everything of the Pod but its annotations and lists.
func unchangedPod(original, mutated *corev1.Pod) error {
	if !sameExcept(original, mutated, blankPod, podHoles...) {
		return fmt.Errorf("mutation changed a field of the pod outside its annotations, containers and volumes; only additions can be patched")
	}
	return nil
}

// unchangedContainer: everything of a container but the additions to its
// env and volume mounts. at names it in the patched Pod, for the message;
// it is only called for one.
func unchangedContainer(at func() string, original, mutated *corev1.Container) error {
	if !sameExcept(original, mutated, blankContainer, containerHoles...) {
		return fmt.Errorf("mutation changed %s in place (a field other than env and volumeMounts); only additions can be patched", at())
	}
	if err := unchangedPrefix(original.Env, mutated.Env); err != nil {
		return err.at(at() + "/env")
	}
	if err := unchangedPrefix(original.VolumeMounts, mutated.VolumeMounts); err != nil {
		return err.at(at() + "/volumeMounts")
	}
	return nil
}

// listChange is how a list changed other than by appending.
type listChange struct {
	removed bool
	index   int
}

func (c *listChange) at(path string) error {
	if c.removed {
		return fmt.Errorf("mutation removed elements of %s; only additions can be patched", path)
	}
	return fmt.Errorf("mutation changed %s/%d in place; only additions can be patched", path, c.index)
}

// unchangedPrefix: the elements original has are in mutated as they were.
func unchangedPrefix[T any](original, mutated []T) *listChange {
	if len(mutated) < len(original) {
		return &listChange{removed: true}
	}
	// The same memory (Apply appends to a clipped copy of the slice, which
	// keeps the original's array) holds the same elements; an edit made
	// through it would show in both, and no comparison could see it.
	if len(original) == 0 || unsafe.SliceData(original) == unsafe.SliceData(mutated) {
		return nil
	}
	for i := range original {
		if !sameValue(&original[i], &mutated[i]) {
			return &listChange{index: i}
		}
	}
	return nil
}

// unchangedAnnotations: every annotation the Pod had is there with its
// value.
func unchangedAnnotations(original, mutated map[string]string) error {
	for k, v := range original {
		if got, ok := mutated[k]; !ok || got != v {
			return fmt.Errorf("mutation changed or removed the pod's annotation %q; only additions can be patched", k)
		}
	}
	return nil
}
