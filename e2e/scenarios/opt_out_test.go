package scenarios

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// Scenario 3: a Pod of an annotated ServiceAccount opted out by label (which
// the webhook configuration's objectSelector skips) or by annotation (which
// the webhook itself honours) is stored unchanged; the same Pod without the
// opt-out is injected, so the opt-out is what made the difference.
func TestScenario3OptOutLabelAndAnnotation(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa = "team-c", "app"
	annotatedServiceAccount(t, ctx, s, ns, sa, false)
	optOut := keys.Key(identity.SkipPodIdentityWebhook)

	tests := map[string]struct {
		mutate func(*corev1.Pod)
		want   bool
	}{
		"label":       {mutate: func(p *corev1.Pod) { p.Labels = map[string]string{optOut: "true"} }},
		"annotation":  {mutate: func(p *corev1.Pod) { p.Annotations = map[string]string{optOut: "true"} }},
		"empty label": {mutate: func(p *corev1.Pod) { p.Labels = map[string]string{optOut: ""} }},
		"no opt-out":  {mutate: func(*corev1.Pod) {}, want: true},
		"other label": {mutate: func(p *corev1.Pod) { p.Labels = map[string]string{"app": "x"} }, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := harness.SimplePod("", sa)
			pod.GenerateName = "opt-out-"
			tc.mutate(pod)
			stored := createPod(t, ctx, s, ns, pod)
			if tc.want {
				checkInjected(t, stored, "app")
			} else {
				checkUntouched(t, stored)
			}
		})
	}
}
