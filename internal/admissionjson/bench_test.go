package admissionjson

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// BenchmarkPatch is the patch step alone: the whole re-encoded Pods diffed
// (what the handler did first), the patch of one operation per element the
// mutation appended (what it did next, and its fallback), and the spec set
// whole with the elements spliced into the request's bytes, found by a
// scan of the spec (spliced, the fallback) or where the reader noted them
// (spliced-read, what the handler does). The plan is the one the flag
// defaults give.
func BenchmarkPatch(b *testing.B) {
	plan := identity.Plan{RoleARN: testARN, Audience: identity.DefaultAudience, ExpirationSeconds: identity.DefaultTokenExpiration,
		MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", TokenSource: identity.TokenSourceServiceAccount}
	for _, bc := range []struct {
		name string
		raw  []byte
	}{{"typical", typicalPod("")}, {"large", largePod("")}} {
		original := &corev1.Pod{}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(bc.raw, original); err != nil {
			b.Fatal(err)
		}
		mutated, _ := mutate.Apply(original, plan)
		b.Run(bc.name+"/whole", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				before, _ := json.Marshal(original)
				after, _ := json.Marshal(mutated)
				if resp := admission.PatchResponseFromRaw(before, after); len(resp.Patches) == 0 {
					b.Fatal("no patch")
				}
			}
		})
		b.Run(bc.name+"/appended", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ops, err := operationsPatch(original, mutated); err != nil || len(ops) == 0 {
					b.Fatal("no patch", err)
				}
			}
		})
		obj := DecodePodObject(bc.raw)
		b.Run(bc.name+"/spliced", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ops, err := Patch(obj.Spec, original, mutated); err != nil || len(ops) == 0 {
					b.Fatal("no patch", err)
				}
			}
		})
		// What the handler does: splice where the reader found the
		// spec's lists, without scanning the spec again.
		if obj.layout == nil {
			b.Fatal("the reader found no layout")
		}
		read, _ := mutate.Apply(obj.Pod, plan)
		b.Run(bc.name+"/spliced-read", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ops, err := obj.Patch(read); err != nil || len(ops) == 0 {
					b.Fatal("no patch", err)
				}
			}
		})
	}
}
