package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/irsa-webhook/irsa-webhook/internal/testpods"
)

// typicalPod has 2 containers, 1 init container, 5 env vars each and 3 volumes.
func typicalPod(annotations string) []byte { return testpods.Typical(annotations) }

// largePod has 20 containers with 200 env vars in all (10 each) and 3 volumes.
func largePod(annotations string) []byte { return testpods.Large(annotations) }

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
