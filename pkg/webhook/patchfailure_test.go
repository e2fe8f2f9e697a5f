package webhook

import (
	"context"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// TestHandlerRefusesAnUnpatchableMutation: a mutation that edits what the
// Pod had (which no append-only patch can say) fails the admission with
// 500 and says why, rather than admitting the Pod with the edit dropped.
func TestHandlerRefusesAnUnpatchableMutation(t *testing.T) {
	h := benchHandler()
	h.apply = func(pod *corev1.Pod, plan identity.Plan) (*corev1.Pod, []string) {
		out, warnings := mutate.Apply(pod, plan)
		out.Spec.Containers = append([]corev1.Container(nil), out.Spec.Containers...)
		c := &out.Spec.Containers[0]
		c.Env = append([]corev1.EnvVar(nil), c.Env...)
		c.Env[0].Value = "edited in place"
		return out, warnings
	}
	resp := h.Handle(context.Background(), podCreate(typicalPod("")))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("allowed=%t result=%+v, want a 500 failure", resp.Allowed, resp.Result)
	}
	if msg := resp.Result.Message; !strings.Contains(msg, "could not express its mutation") || !strings.Contains(msg, "/spec/containers/0/env/0") {
		t.Errorf("message %q does not say what could not be patched", msg)
	}
	if len(resp.Patch) != 0 {
		t.Errorf("a failed admission carries a patch: %s", resp.Patch)
	}
}
