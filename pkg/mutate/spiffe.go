package mutate

import (
	"fmt"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// svidHelper is the native sidecar (an init container that keeps running)
// that fetches JWT-SVIDs and writes them to the token file. Its startup
// probe passes once the first token is written; the kubelet starts the
// containers after it only then, so they never run without a token.
func svidHelper(plan identity.Plan) corev1.Container {
	file := path.Join(plan.MountPath, TokenFile)
	args := []string{
		"svid-helper",
		"--workload-api-addr=unix://" + path.Join(SocketMountPath, plan.SPIFFE.SocketName),
		"--audience=" + plan.Audience,
		"--file=" + file,
	}
	if plan.SPIFFE.ID != "" {
		args = append(args, "--spiffe-id="+plan.SPIFFE.ID)
	}
	return corev1.Container{
		Name:          SVIDHelperName,
		Image:         plan.SPIFFE.HelperImage,
		Args:          args,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeName, MountPath: plan.MountPath},
			{Name: SocketVolumeName, MountPath: SocketMountPath, ReadOnly: true},
		},
		StartupProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{HelperBinary, "svid-helper", "check", "--file=" + file},
			}},
			PeriodSeconds: 1,
			// Two minutes for the agent to attest the workload and the first
			// SVID to arrive before the kubelet restarts the sidecar.
			FailureThreshold: 120,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// spiffeTokenVolume is the shared in-memory volume the sidecar writes to.
// Memory medium keeps the token off the node's disk.
func spiffeTokenVolume() corev1.Volume {
	return corev1.Volume{
		Name: VolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: ptr.To(resource.MustParse("1Mi")),
		}},
	}
}

// socketVolume reaches the Workload API: through the SPIFFE CSI driver, or a
// hostPath directory when one is configured.
func socketVolume(plan identity.Plan) corev1.Volume {
	v := corev1.Volume{Name: SocketVolumeName}
	if plan.SPIFFE.SocketHostPath != "" {
		v.HostPath = &corev1.HostPathVolumeSource{Path: plan.SPIFFE.SocketHostPath, Type: ptr.To(corev1.HostPathDirectory)}
	} else {
		v.CSI = &corev1.CSIVolumeSource{Driver: CSIDriver, ReadOnly: ptr.To(true)}
	}
	return v
}

// spiffeHelperIndex finds the helper an earlier pass inserted: the init
// container called SVIDHelperName, a native sidecar running plan's helper
// image. It returns -1 when there is none yet, and a conflict instead when
// the Pod already uses the helper's names for something else: another
// container of that name, a volume called SocketVolumeName without the
// helper, or a mount of that volume in any container but the helper. The
// socket is the SPIRE agent's, for the helper alone.
func spiffeHelperIndex(pod *corev1.Pod, plan identity.Plan) (int, string) {
	helper := -1
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.Name == SVIDHelperName && isNativeSidecar(c) && c.Image == plan.SPIFFE.HelperImage && helper < 0 {
			helper = i
		}
	}
	check := func(kind string, cs []corev1.Container, helperAt int) string {
		for i := range cs {
			if i == helperAt {
				continue
			}
			if cs[i].Name == SVIDHelperName {
				return fmt.Sprintf("%s %q has the name of the SPIFFE token helper, which the webhook adds; rename it", kind, cs[i].Name)
			}
			for _, vm := range cs[i].VolumeMounts {
				if vm.Name == SocketVolumeName {
					return fmt.Sprintf("%s %q mounts a volume named %q, the name of the Workload API socket that only the SPIFFE token helper may mount; rename the volume", kind, cs[i].Name, SocketVolumeName)
				}
			}
		}
		return ""
	}
	if c := check("init container", pod.Spec.InitContainers, helper); c != "" {
		return -1, c
	}
	if c := check("container", pod.Spec.Containers, -1); c != "" {
		return -1, c
	}
	if helper < 0 && slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == SocketVolumeName }) {
		return -1, fmt.Sprintf("the pod already has a volume named %q, the name of the Workload API socket volume the webhook adds; rename it", SocketVolumeName)
	}
	return helper, ""
}

// addSPIFFE adds the socket volume and inserts the helper as the first init
// container; spiffeHelperIndex found neither in the Pod. The patch adds the
// helper at index 0 (pkg/webhook), shifting the others.
func addSPIFFE(pod *corev1.Pod, plan identity.Plan) {
	pod.Spec.Volumes = append(pod.Spec.Volumes, socketVolume(plan))
	pod.Spec.InitContainers = slices.Insert(pod.Spec.InitContainers, 0, svidHelper(plan))
}
