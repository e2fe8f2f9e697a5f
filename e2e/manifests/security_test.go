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
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			deps := all[*appsv1.Deployment](objs)
			if want := map[bool]int{false: 1, true: 2}[v.discovery != ""]; len(deps) != want {
				t.Fatalf("%d deployments, want %d", len(deps), want)
			}
			// Every Pod the chart makes: the Deployments' and helm test's.
			var pods []podOf
			for _, d := range deps {
				pods = append(pods, podOf{nameOf(d), d.Spec.Template})
			}
			for _, p := range all[*corev1.Pod](objs) {
				pods = append(pods, podOf{nameOf(p), corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}})
			}
			if got := len(pods) - len(deps); got != map[bool]int{false: 0, true: 1}[v.tests] {
				t.Errorf("%d test Pods, want tests %v", got, v.tests)
			}
			for _, d := range pods {
				pod := d.pod
				result := policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
				if !result.Allowed {
					t.Errorf("%s violates the restricted Pod Security Standard: %v", d.name, result.ForbiddenReasons)
				}
				podUser := pod.Spec.SecurityContext.RunAsUser
				for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
					sc := c.SecurityContext
					if sc == nil {
						t.Errorf("%s/%s: no securityContext", d.name, c.Name)
						continue
					}
					if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
						t.Errorf("%s/%s: root filesystem is writable", d.name, c.Name)
					}
					user := sc.RunAsUser
					if user == nil {
						user = podUser
					}
					// A numeric UID lets the kubelet check runAsNonRoot without
					// trusting the image's USER.
					if user == nil || *user == 0 {
						t.Errorf("%s/%s: no numeric non-root runAsUser", d.name, c.Name)
					}
					if c.ImagePullPolicy == corev1.PullAlways {
						t.Errorf("%s/%s: imagePullPolicy Always makes a webhook restart depend on the registry", d.name, c.Name)
					}
				}
				if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
					t.Errorf("%s: shares a host namespace", d.name)
				}
			}

			if !v.namespace {
				return // helm install --create-namespace makes it
			}
			ns := get[*corev1.Namespace](t, objs, namespace)
			if got := ns.Labels[psaapi.EnforceLevelLabel]; got != string(psaapi.LevelRestricted) {
				t.Errorf("namespace %s enforces %q, want restricted", namespace, got)
			}
		})
	}
}

type podOf struct {
	name string
	pod  corev1.PodTemplateSpec
}
