package admissionjson

import (
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/slab"
)

// podMemory is where the reader puts a review's Pod: the Pod, its lists
// and their layout. A review's is pooled, and used again once the review
// is released; made anew for each admission, they were a third of the
// webhook's garbage under load.
type podMemory struct {
	pod        corev1.Pod
	layout     rawSpec
	containers slab.Slab[corev1.Container]
	env        slab.Slab[corev1.EnvVar]
	mounts     slab.Slab[corev1.VolumeMount]
	volumes    slab.Slab[corev1.Volume]
}

var podMemories = sync.Pool{New: func() any { return new(podMemory) }}

// newPod is a zero Pod in m.
func (m *podMemory) newPod() *corev1.Pod {
	m.pod = corev1.Pod{}
	return &m.pod
}

// newLayout is an empty layout in m, keeping its lists' arrays.
func (m *podMemory) newLayout() *rawSpec {
	init, containers := m.layout.initElems[:0], m.layout.containerElems[:0]
	clear(init[:cap(init)])
	clear(containers[:cap(containers)])
	m.layout = rawSpec{initElems: init, containerElems: containers}
	return &m.layout
}

// release zeroes m, keeping its arrays unless a large Pod grew them, and
// pools it.
func (m *podMemory) release() {
	m.pod = corev1.Pod{}
	m.newLayout()
	if cap(m.layout.initElems) > 64 || cap(m.layout.containerElems) > 64 {
		m.layout = rawSpec{}
	}
	m.containers.Reset(64)
	m.env.Reset(2048)
	m.mounts.Reset(512)
	m.volumes.Reset(256)
	podMemories.Put(m)
}
