package admissionjson

import (
	"bytes"

	corev1 "k8s.io/api/core/v1"
)

// DecodePod decodes raw, a Pod as JSON, into a typed Pod that holds only
// what the handler and mutate.Apply read of it (reader): its name, labels
// and annotations, its ServiceAccount, where it may run and its declared OS
// (for the Windows check), and of each container its name, restart policy,
// env and volume mounts; of each volume its name. Reading only this skips
// what the whole Pod would build and nobody reads: images, resources
// (whose quantities are parsed), probes, managedFields; the whole typed
// Pod decode was a quarter of the handler's time (docs/benchmarks.md).
//
// The patch only appends to the lists it holds, so the elements it leaves
// out cannot be lost. TestAdmittedPodCoversApply holds Apply to reading
// nothing else: it mutates every golden input both ways and compares.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	o := DecodePodObject(raw)
	return o.Pod, o.Err
}

// DecodePodObject is DecodePod as a PodObject, for a request whose object
// is already on its own (Handle's): its Spec is a part of raw.
func DecodePodObject(raw []byte) PodObject {
	pod := &corev1.Pod{}
	at, layout, err := readPod(raw, pod)
	if err != nil {
		return PodObject{Present: true, Err: err}
	}
	return PodObject{Present: true, Pod: pod, Spec: at.of(raw), layout: layout}
}

// specSpan is where a spec's value is in the decoder's input: from the end
// of its name to the end of its value. decodes counts the spec's members:
// a repeated one, which the decoder merges into the first, leaves no bytes
// to splice into.
type specSpan struct {
	from, to int64
	decodes  int
}

// of is the spec's value in input, or nil when the spec was not one object.
func (s specSpan) of(input []byte) []byte {
	if s.decodes != 1 || s.to <= s.from || s.to > int64(len(input)) {
		return nil
	}
	// Between the name and the value: the colon and whitespace.
	return bytes.TrimLeft(input[s.from:s.to], " \t\r\n:")
}

// PodObject is an AdmissionRequest's object, decoded as a Pod where it
// stands in the review, so the review is read once: capturing the object's
// raw bytes and decoding them again was an eighth of the handler's time
// (docs/benchmarks.md). Whether the request is for a Pod is known only
// after the review is decoded, so an object that is not a Pod does not fail
// the review: its error is kept, for the handler to report if it was meant
// to be a Pod. compareOnePass (FuzzDecode, TestDecodeEdgeCases) holds this
// to DecodePod.
type PodObject struct {
	// Present is false when the object is absent or null.
	Present bool
	// Pod is what DecodePod would return, or Err why it could not.
	Pod *corev1.Pod
	Err error
	// Spec is the Pod's spec as the request holds it, every field the
	// compiled API does not know included, for Patch to splice into; nil
	// when the spec is not one JSON object.
	Spec []byte

	specAt specSpan // Spec's place in the review
	// patchBuf, when not nil, is where Patch writes the patch: the
	// review's (Review.Release).
	patchBuf *bytes.Buffer
	// layout is where Spec's lists are, as the reader found them; nil when
	// the splice is to scan Spec itself.
	layout *rawSpec
}

// Patch is the patch that turns the object's Pod into mutated (see
// Patch), spliced where the reader found the spec's lists, so that the
// spec is not scanned again: that scan was a sixth of the handler's time
// under load (docs/benchmarks.md).
func (o *PodObject) Patch(mutated *corev1.Pod) ([]byte, error) {
	var dst []byte
	if o.patchBuf != nil {
		dst = o.patchBuf.AvailableBuffer()
	}
	p, err := patch(dst, o.Spec, o.layout, o.Pod, mutated)
	if o.patchBuf != nil && cap(p) > o.patchBuf.Cap() {
		// The patch outgrew the buffer: the buffer keeps its memory, so
		// the next review's patch fits. Nothing writes to it before
		// Release, by when the patch is no longer read.
		*o.patchBuf = *bytes.NewBuffer(p[:0])
	}
	return p, err
}
