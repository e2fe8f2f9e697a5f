package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MaxRequestBytes bounds an AdmissionReview body: two objects of at most
// 3 MiB each (etcd's request limit) and the review around them.
const MaxRequestBytes = 7 << 20

// checkReview rejects a body that is not an admission.k8s.io/v1
// AdmissionReview before the framework decodes it: the framework decodes
// whatever it is given into a v1 review, so a Pod or a v9 review would
// otherwise be answered as if it were one. Bad requests are answered the way
// the framework answers them: HTTP 200 with the code in the response status.
func checkReview(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil {
			writeError(w, http.StatusBadRequest, errors.New("request body is empty"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
		_ = r.Body.Close()
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
			return
		case len(body) == 0:
			writeError(w, http.StatusBadRequest, errors.New("request body is empty"))
			return
		case len(body) > MaxRequestBytes:
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", MaxRequestBytes))
			return
		}
		if r.Header.Get("Content-Type") == "application/json" {
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := json.Unmarshal(body, &tm); err == nil && (tm.APIVersion != "admission.k8s.io/v1" || tm.Kind != "AdmissionReview") {
				writeError(w, http.StatusBadRequest, fmt.Errorf("got apiVersion %q kind %q, want an admission.k8s.io/v1 AdmissionReview", shorten(tm.APIVersion, 64), shorten(tm.Kind, 64)))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, code int32, err error) {
	resp := admission.Errored(code, err)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
		TypeMeta: metaTypeV1Review,
		Response: &resp.AdmissionResponse,
	})
}

var metaTypeV1Review = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}
