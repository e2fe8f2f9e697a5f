package manifests_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
)

// Every Pod template passes the "restricted" Pod Security Standard as the
// API server's own admission plugin evaluates it, and goes beyond it where
// issue 5 asks: read-only root filesystem, a numeric non-root user.
func TestPodsPassRestrictedPodSecurity(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("pod security evaluator: %v", err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			objs := decode(t, overlay, render(t, overlay))
			deps := all[*appsv1.Deployment](objs)
			if len(deps) != 2 {
				t.Fatalf("%d deployments, want 2", len(deps))
			}
			for _, d := range deps {
				pod := d.Spec.Template
				result := policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
				if !result.Allowed {
					t.Errorf("%s violates the restricted Pod Security Standard: %v", nameOf(d), result.ForbiddenReasons)
				}
				podUser := pod.Spec.SecurityContext.RunAsUser
				for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
					sc := c.SecurityContext
					if sc == nil {
						t.Errorf("%s/%s: no securityContext", nameOf(d), c.Name)
						continue
					}
					if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
						t.Errorf("%s/%s: root filesystem is writable", nameOf(d), c.Name)
					}
					user := sc.RunAsUser
					if user == nil {
						user = podUser
					}
					// A numeric UID lets the kubelet check runAsNonRoot without
					// trusting the image's USER.
					if user == nil || *user == 0 {
						t.Errorf("%s/%s: no numeric non-root runAsUser", nameOf(d), c.Name)
					}
					if c.ImagePullPolicy == corev1.PullAlways {
						t.Errorf("%s/%s: imagePullPolicy Always makes a webhook restart depend on the registry", nameOf(d), c.Name)
					}
				}
				if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
					t.Errorf("%s: shares a host namespace", nameOf(d))
				}
			}

			ns := get[*corev1.Namespace](t, objs, namespace)
			if got := ns.Labels[psaapi.EnforceLevelLabel]; got != string(psaapi.LevelRestricted) {
				t.Errorf("namespace %s enforces %q, want restricted", namespace, got)
			}
		})
	}
}
