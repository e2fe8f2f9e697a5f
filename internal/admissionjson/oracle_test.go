package admissionjson

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// admittedPod is the oracle the reader is held to (FuzzDecode,
// TestDecodeEdgeCases): the fields DecodePod reads, decoded by the API
// machinery's decoder into plain structs, then made a typed Pod (pod).
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

// admittedSpec is what admittedPod reads of the spec.
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
}

type admittedContainer struct {
	Name          string                         `json:"name"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
	Env           []corev1.EnvVar                `json:"env"`
	VolumeMounts  []corev1.VolumeMount           `json:"volumeMounts"`
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
