package admissionjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// awkward are strings encoding/json escapes in ways of its own: HTML
// characters, line and paragraph separators, control characters, invalid
// UTF-8, quotes and backslashes.
var awkward = []string{"", "plain", `<script>&"quoted"\</script>`, "line\u2028para\u2029", "\x00\x01\t\n\r\x1f\x7f", "bad \xff\xfe utf-8", "ünïcødé 🙂"}

func responseCases() map[string]admissionv1.AdmissionResponse {
	completed := func(r admission.Response) admissionv1.AdmissionResponse {
		if err := r.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "uid-1"}}); err != nil {
			panic(err)
		}
		return r.AdmissionResponse
	}
	cases := map[string]admissionv1.AdmissionResponse{
		"bare":             {},
		"allowed":          {UID: "uid-1", Allowed: true},
		"allowed complete": completed(admission.Allowed("")),
		"patched": completed(admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
			Allowed: true, Patch: []byte(`[{"op":"add","path":"/spec","value":{}}]`), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
		}}.WithWarnings("one", "two")),
		"denied":          completed(admission.Denied("no role for you")),
		"errored":         completed(admission.Errored(http.StatusBadRequest, errors.New("bad review"))),
		"empty warnings":  {UID: "u", Allowed: true, Warnings: []string{}},
		"empty patch":     {UID: "u", Allowed: true, Patch: []byte{}},
		"negative code":   {UID: "u", Result: &metav1.Status{Code: -7}},
		"empty status":    {UID: "u", Result: &metav1.Status{}},
		"odd patch bytes": {UID: "u", Patch: []byte{0, 0xff, 0xfe, '"', '\\'}, PatchType: ptr.To(admissionv1.PatchType(`x"y`))},
		// What appendReview leaves to encoding/json.
		"details":           {UID: "u", Result: &metav1.Status{Details: &metav1.StatusDetails{Name: "n", Causes: []metav1.StatusCause{{Message: "m"}}}}},
		"list metadata":     {UID: "u", Result: &metav1.Status{ListMeta: metav1.ListMeta{ResourceVersion: "7"}}},
		"status type":       {UID: "u", Result: &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status"}}},
		"audit annotations": {UID: "u", Allowed: true, AuditAnnotations: map[string]string{"a": "b"}},
	}
	for i, s := range awkward {
		cases["awkward "+string(rune('a'+i))] = admissionv1.AdmissionResponse{
			UID: types.UID("uid" + s), Allowed: i%2 == 0, Warnings: []string{s, s + s},
			Result: &metav1.Status{Status: s, Message: s, Reason: metav1.StatusReason(s), Code: int32(i)},
		}
	}
	return cases
}

// TestAppendReviewEqualsStd holds appendReview to encoding/json: the same
// JSON value, member for member, ended by a newline as json.Encoder ends it.
func TestAppendReviewEqualsStd(t *testing.T) {
	for name, resp := range responseCases() {
		t.Run(name, func(t *testing.T) { compareReview(t, resp) })
	}
}

// FuzzAppendReview does the same for responses made of fuzzed strings.
func FuzzAppendReview(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, s, []byte(s), true, int32(200))
	}
	f.Fuzz(func(t *testing.T, uid, message, warning string, patch []byte, allowed bool, code int32) {
		compareReview(t, admissionv1.AdmissionResponse{
			UID: types.UID("u" + uid), Allowed: allowed, Patch: patch, Warnings: []string{warning, message},
			Result: &metav1.Status{Message: message, Reason: metav1.StatusReason(warning), Status: uid, Code: code},
		})
		compareReview(t, admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: allowed, Patch: patch, PatchType: ptr.To(admissionv1.PatchType(message))})
	})
}

func compareReview(t *testing.T, resp admissionv1.AdmissionResponse) {
	t.Helper()
	want, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeV1Review, Response: &resp})
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendReview([]byte("kept"), &resp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("kept")) || !bytes.HasSuffix(got, []byte("}\n")) {
		t.Fatalf("appendReview did not append one line to what it was given: %q", got)
	}
	got = got[len("kept"):]
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("appendReview wrote invalid JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &wantValue); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Fatalf("appendReview wrote\n%s\nencoding/json writes\n%s", got, want)
	}
}

// TestWriteResponseAnswersTheReview checks what goes on the wire: the
// review, its length announced, with a pooled buffer too small to hold it.
func TestWriteResponseAnswersTheReview(t *testing.T) {
	resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		UID: "uid-1", Allowed: true, Patch: bytes.Repeat([]byte("p"), 3*maxPooledBuffer), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
	}}
	for range 2 { // a fresh buffer, then the one the first answer left
		w := httptest.NewRecorder()
		WriteResponse(w, resp)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("answered %d with %q", w.Code, w.Header().Get("Content-Type"))
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
			t.Fatalf("Content-Length %s for a body of %d bytes", cl, w.Body.Len())
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &review); err != nil {
			t.Fatal(err)
		}
		if review.Response == nil || !reflect.DeepEqual(*review.Response, resp.AdmissionResponse) {
			t.Fatalf("the review answers %+v", review.Response)
		}
	}
}
