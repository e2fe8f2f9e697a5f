package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// benchPod renders a Pod with the given number of init containers and
// containers, each with envPerContainer env vars and two volume mounts, and
// three volumes. annotations is spliced into metadata as it is.
func benchPod(annotations string, initContainers, containers, envPerContainer int) []byte {
	env := make([]string, envPerContainer)
	for i := range env {
		env[i] = fmt.Sprintf(`{"name":"VAR_%d","value":"value-%d"}`, i, i)
	}
	c := func(name string) string {
		return fmt.Sprintf(`{"name":%q,"image":"registry.example/%s:1.0","env":[%s],"volumeMounts":[{"name":"config","mountPath":"/etc/app"},{"name":"cache","mountPath":"/cache"}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}`,
			name, name, strings.Join(env, ","))
	}
	list := func(prefix string, n int) string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = c(fmt.Sprintf("%s-%d", prefix, i))
		}
		return strings.Join(cs, ",")
	}
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app-7d9c","namespace":"team-a","labels":{"app":"web"}%s},"spec":{"serviceAccountName":"app","initContainers":[%s],"containers":[%s],"volumes":[{"name":"config","configMap":{"name":"cfg"}},{"name":"cache","emptyDir":{}},{"name":"data","emptyDir":{}}]}}`,
		annotations, list("init", initContainers), list("app", containers))
}

// typicalPod has 2 containers, 1 init container, 5 env vars each and 3 volumes.
func typicalPod(annotations string) []byte { return benchPod(annotations, 1, 2, 5) }

// largePod has 20 containers with 200 env vars in all (10 each) and 3 volumes.
func largePod(annotations string) []byte { return benchPod(annotations, 0, 20, 10) }

const optOutAnnotation = `,"annotations":{"eks.amazonaws.com/skip-pod-identity-webhook":"true"}`

// benchPods are the cases every handler benchmark runs, in a stable order.
var benchPods = []struct {
	name string
	raw  []byte
}{
	{"typical", typicalPod("")},
	{"large", largePod("")},
	{"skipped", typicalPod(optOutAnnotation)},
}

// quietFramework sets controller-runtime's logger, which otherwise warns on
// stderr with a stack trace amid the benchmark output that benchstat parses.
func quietFramework() { ctrllog.SetLogger(logr.Discard()) }

func benchHandler() *Handler {
	return &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}},
	}
}

// BenchmarkHandle is the decision alone: Pod decode, lookup, resolve,
// mutation and patch.
func BenchmarkHandle(b *testing.B) {
	quietFramework()
	for _, bc := range benchPods {
		b.Run(bc.name, func(b *testing.B) {
			h := benchHandler()
			req := podCreate(bc.raw)
			if resp := h.Handle(context.Background(), req); !resp.Allowed {
				b.Fatalf("pod %s not allowed: %v", bc.name, resp.Result)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.Handle(context.Background(), req)
			}
		})
	}
}

// BenchmarkServeHTTP is the full path behind TLS: AdmissionReview decode,
// decision, mutation, patch, response encode.
func BenchmarkServeHTTP(b *testing.B) {
	quietFramework()
	for _, bc := range benchPods {
		b.Run(bc.name, func(b *testing.B) {
			h := benchHandler()
			req := podCreate(bc.raw)
			body, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req.AdmissionRequest})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// BenchmarkPatch is the patch step alone: the whole re-encoded Pods diffed
// (what the handler did first) against the patch of what the mutation
// appended (what it does now).
func BenchmarkPatch(b *testing.B) {
	h := benchHandler()
	for _, bc := range benchPods[:2] {
		original := &corev1.Pod{}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(bc.raw, original); err != nil {
			b.Fatal(err)
		}
		d := identity.Decide(identity.Request{Defaults: h.Defaults, LookupServiceAccount: func() (map[string]string, error) {
			return map[string]string{"eks.amazonaws.com/role-arn": testARN}, nil
		}})
		mutated, _ := mutate.Apply(original, *d.Plan)
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
				if ops, err := patch(original, mutated); err != nil || len(ops) == 0 {
					b.Fatal("no patch", err)
				}
			}
		})
	}
}
