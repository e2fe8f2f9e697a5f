package admissionjson

import (
	"bytes"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// admittedPod is what the handler and mutate.Apply read of a Pod: its name,
// labels and annotations, its ServiceAccount, where it may run and its
// declared OS (for the Windows check), and of each container its name,
// restart policy, env and volume mounts; of each volume its name. Decoding only this skips what the
// typed Pod would build and nobody reads: images, resources (whose
// quantities are parsed), probes, managedFields. The typed Pod decode was a
// quarter of the handler's time (docs/benchmarks.md).
//
// The patch only appends to the lists it holds, so the elements it leaves
// out cannot be lost. TestAdmittedPodCoversApply holds Apply to reading
// nothing else: it mutates every golden input both ways and compares.
type admittedPod struct {
	Metadata struct {
		Name         string            `json:"name"`
		GenerateName string            `json:"generateName"`
		Namespace    string            `json:"namespace"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec admittedSpec `json:"spec"`
}

// admittedSpec is what admittedPod reads of the spec, and where the spec's
// value is in the decoder's input, so that the patch can be spliced into
// the bytes the API server sent (specSpan).
type admittedSpec struct {
	ServiceAccountName string            `json:"serviceAccountName"`
	NodeSelector       map[string]string `json:"nodeSelector"`
	Affinity           *struct {
		NodeAffinity *corev1.NodeAffinity `json:"nodeAffinity"`
	} `json:"affinity"`
	OS             *corev1.PodOS       `json:"os"`
	InitContainers []admittedContainer `json:"initContainers"`
	Containers     []admittedContainer `json:"containers"`
	Volumes        []struct {
		Name string `json:"name"`
	} `json:"volumes"`

	at specSpan
}

type admittedContainer struct {
	Name          string                         `json:"name"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
	Env           []corev1.EnvVar                `json:"env"`
	VolumeMounts  []corev1.VolumeMount           `json:"volumeMounts"`
}

// DecodePod decodes raw, a Pod as JSON, into a typed Pod that holds only
// what admittedPod reads, with the API machinery's case-sensitive decoder.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	o := DecodePodObject(raw)
	return o.Pod, o.Err
}

// DecodePodObject is DecodePod as a PodObject, for a request whose object
// is already on its own (Handle's): its Spec is a part of raw.
func DecodePodObject(raw []byte) PodObject {
	var p admittedPod
	if err := unmarshal(raw, &p); err != nil {
		return PodObject{Present: true, Err: err}
	}
	return PodObject{Present: true, Pod: p.pod(), Spec: p.Spec.at.of(raw)}
}

// specSpan is where a spec's value is in the decoder's input: from the end
// of its name to the end of its value. decodes counts the spec's members:
// a repeated one, which the decoder merges into the first, leaves no bytes
// to splice into.
type specSpan struct {
	from, to int64
	decodes  int
}

// UnmarshalJSONFrom decodes the spec as the plain struct, noting where its
// value is: reading two offsets around the one decode, rather than
// capturing the value's bytes and decoding them again.
func (s *admittedSpec) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain admittedSpec // without this method
	at := s.at              // a null spec clears the struct
	from, object := dec.InputOffset(), dec.PeekKind() == '{'
	if err := jsonv2.UnmarshalDecode(dec, (*plain)(s)); err != nil {
		return err
	}
	s.at = specSpan{decodes: at.decodes + 1}
	if object {
		s.at.from, s.at.to = from, dec.InputOffset()
	}
	return nil
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

	specAt specSpan // Spec's place in the review, until ReadReview copies it
}

// UnmarshalJSONFrom decodes the object as a Pod, keeping a Pod that does
// not decode as Err rather than failing the review.

func (o *PodObject) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	*o = PodObject{Present: true} // a repeated object replaces the first
	depth := dec.StackDepth()
	var p admittedPod
	err := jsonv2.UnmarshalDecode(dec, &p)
	if err == nil {
		o.Pod, o.specAt = p.pod(), p.Spec.at
		return nil
	}
	// The decode stops at the first error. After one in valid JSON, read
	// past the rest of the object; invalid JSON fails here again.
	for dec.StackDepth() > depth {
		if _, skipErr := dec.ReadToken(); skipErr != nil {
			return err
		}
	}
	o.Err = err
	return nil
}

// pod is the typed Pod holding what p read.
func (p *admittedPod) pod() *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:         p.Metadata.Name,
		GenerateName: p.Metadata.GenerateName,
		Namespace:    p.Metadata.Namespace,
		Labels:       p.Metadata.Labels,
		Annotations:  p.Metadata.Annotations,
	}}
	pod.Spec.ServiceAccountName = p.Spec.ServiceAccountName
	pod.Spec.NodeSelector = p.Spec.NodeSelector
	pod.Spec.OS = p.Spec.OS
	if p.Spec.Affinity != nil {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: p.Spec.Affinity.NodeAffinity}
	}
	pod.Spec.InitContainers = containers(p.Spec.InitContainers)
	pod.Spec.Containers = containers(p.Spec.Containers)
	if p.Spec.Volumes != nil {
		pod.Spec.Volumes = make([]corev1.Volume, len(p.Spec.Volumes))
		for i, v := range p.Spec.Volumes {
			pod.Spec.Volumes[i].Name = v.Name
		}
	}
	return pod
}

// containers keeps nil as nil, as the typed decode does.
func containers(in []admittedContainer) []corev1.Container {
	if in == nil {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, RestartPolicy: c.RestartPolicy, Env: c.Env, VolumeMounts: c.VolumeMounts}
	}
	return out
}

// keepSpec copies Spec out of input, the buffer the review was decoded
// from, which goes back to the pool.
func (o *PodObject) keepSpec(input []byte) {
	if raw := o.specAt.of(input); raw != nil {
		o.Spec = bytes.Clone(raw)
	}
}
