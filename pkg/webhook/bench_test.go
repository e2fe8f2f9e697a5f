package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// typicalPod has 2 containers, 1 init container, 5 env vars and 3 volumes.
func typicalPod(annotations string) []byte {
	env := `[{"name":"A","value":"1"},{"name":"B","value":"2"},{"name":"C","value":"3"},{"name":"D","value":"4"},{"name":"E","value":"5"}]`
	c := func(name string) string {
		return fmt.Sprintf(`{"name":%q,"image":"registry.example/%s:1.0","env":%s,"volumeMounts":[{"name":"config","mountPath":"/etc/app"},{"name":"cache","mountPath":"/cache"}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}`, name, name, env)
	}
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app-7d9c","namespace":"team-a","labels":{"app":"web"}%s},"spec":{"serviceAccountName":"app","initContainers":[%s],"containers":[%s,%s],"volumes":[{"name":"config","configMap":{"name":"cfg"}},{"name":"cache","emptyDir":{}},{"name":"data","emptyDir":{}}]}}`,
		annotations, c("init"), c("app"), c("sidecar"))
}

func benchHandler() *Handler {
	return &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}},
	}
}

func BenchmarkHandle(b *testing.B) {
	for name, raw := range map[string][]byte{
		"typical": typicalPod(""),
		"skipped": typicalPod(`,"annotations":{"eks.amazonaws.com/skip-pod-identity-webhook":"true"}`),
	} {
		b.Run(name, func(b *testing.B) {
			h := benchHandler()
			req := podCreate(raw)
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
	h := checkReview(&admission.Webhook{Handler: benchHandler()})
	req := podCreate(typicalPod(""))
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req.AdmissionRequest})
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
