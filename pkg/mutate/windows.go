package mutate

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// IsWindows reports whether pod can only be scheduled to Windows nodes: it
// declares spec.os.name windows (the field Kubernetes has for this), its
// nodeSelector says so, or every required node affinity term admits only
// windows. A pod that might land on Linux is treated as Linux.
func IsWindows(pod *corev1.Pod) bool {
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows {
		return true
	}
	if pod.Spec.NodeSelector[OSLabel] == "windows" {
		return true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return false
	}
	// Terms are ORed: each one must restrict the OS to windows.
	for _, t := range terms {
		if !termOnlyWindows(t) {
			return false
		}
	}
	return true
}

// termOnlyWindows reports whether one of the term's ANDed expressions
// restricts the OS label to windows alone.
func termOnlyWindows(t corev1.NodeSelectorTerm) bool {
	for _, e := range t.MatchExpressions {
		if e.Key != OSLabel || e.Operator != corev1.NodeSelectorOpIn || len(e.Values) == 0 {
			continue
		}
		only := true
		for _, v := range e.Values {
			only = only && v == "windows"
		}
		if only {
			return true
		}
	}
	return false
}

// tokenPath is the token file's path as the container sees it. Windows
// containers get a drive-qualified path with backslashes; the mount path in
// the volumeMount stays as configured, since kubelet maps it.
func tokenPath(mountPath string, windows bool) string {
	return containerPath(path.Join(mountPath, TokenFile), windows)
}

// containerPath is the path p of a file in a mount as the container sees it.
func containerPath(p string, windows bool) string {
	if !windows {
		return p
	}
	return `C:` + strings.ReplaceAll(p, "/", `\`)
}
