package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// documentedCodes are the only status codes the webhook answers with.
var documentedCodes = map[int32]bool{200: true, 400: true, 403: true, 413: true, 500: true, 503: true}

// FuzzReview sends arbitrary bodies through the HTTP handler the server
// mounts. Invariants: no panic, HTTP 200 with an AdmissionReview, only
// documented codes, and any patch applies to the request's pod.
func FuzzReview(f *testing.F) {
	f.Add([]byte(plainPodReview))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":null}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte("\xff\xfe"))
	h := checkReview(&admission.Webhook{Handler: &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}},
	}})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
			t.Fatalf("not an AdmissionReview: %v %s", err, rec.Body.Bytes())
		}
		if r := review.Response.Result; r != nil && !documentedCodes[r.Code] {
			t.Fatalf("undocumented code %d: %s", r.Code, r.Message)
		}
		if len(review.Response.Patch) > 0 {
			var in admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
				t.Fatalf("patch for an undecodable request")
			}
			if _, err := applyOps(in.Request.Object.Raw, review.Response.Patch); err != nil {
				t.Fatalf("patch does not apply: %v", err)
			}
		}
	})
}

// FuzzAnnotations drives the decision and the mutation with arbitrary
// annotation values. Invariants: no panic, a patch that applies and only
// adds, and a second pass that changes nothing.
func FuzzAnnotations(f *testing.F) {
	f.Add(testARN, "sts.amazonaws.com", "true", "3600", "7200", "app,sidecar", "")
	f.Add("arn:aws:iam::111122223333:role/x\n\"*", "a b", "yes", "-1", "1e9", ",,,", "x")
	f.Add(testARN, "\x00", "false", "99999999999999999999", "\u202e", " app ", "")
	f.Fuzz(func(t *testing.T, arn, audience, regional, saExp, podExp, skip, optOut string) {
		sas := staticServiceAccounts{"team-a/app": {
			"eks.amazonaws.com/role-arn":               arn,
			"eks.amazonaws.com/audience":               audience,
			"eks.amazonaws.com/sts-regional-endpoints": regional,
			"eks.amazonaws.com/token-expiration":       saExp,
		}}
		podAnn := map[string]string{
			"eks.amazonaws.com/token-expiration": podExp,
			"eks.amazonaws.com/skip-containers":  skip,
		}
		if optOut != "" {
			podAnn["eks.amazonaws.com/skip-pod-identity-webhook"] = optOut
		}
		pod := map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "p", "namespace": "team-a", "annotations": podAnn},
			"spec": map[string]any{"serviceAccountName": "app", "containers": []any{
				map[string]any{"name": "app", "image": "app"}, map[string]any{"name": "sidecar", "image": "s"},
			}},
		}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Skip()
		}
		h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: sas}
		resp := h.Handle(context.Background(), podCreate(raw))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		patched := applyPatch(t, raw, resp)
		checkOnlyAdds(t, raw, resp)
		if again := h.Handle(context.Background(), podCreate(patched)); len(again.Patches) != 0 {
			t.Fatalf("second pass patches: %v", again.Patches)
		}
	})
}

const plainPodReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"team-a","operation":"CREATE","object":` + plainPod + `}}`
