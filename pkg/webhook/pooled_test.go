package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestConcurrentReviewsKeepTheirOwnBytes: the body, the patch and the
// pieces it is made of are pooled between admissions, so answers made at
// once must not share them. Reviews of Pods of different shapes are
// answered concurrently, each many times, and every answer must be the one
// that review gets alone.
func TestConcurrentReviewsKeepTheirOwnBytes(t *testing.T) {
	quietFramework()
	h := benchHandler()
	type review struct {
		body []byte
		want admissionv1.AdmissionResponse
	}
	var reviews []review
	for i, bc := range benchPods {
		req := podCreate(bc.raw)
		req.UID = types.UID(fmt.Sprintf("uid-%d", i))
		body, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req.AdmissionRequest})
		if err != nil {
			t.Fatal(err)
		}
		reviews = append(reviews, review{body: body, want: answer(t, h, body)})
	}
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				r := reviews[(w+i)%len(reviews)]
				if got := answer(t, h, r.body); !equalResponses(got, r.want) {
					errs <- fmt.Errorf("review %s answered concurrently:\n%+v\nalone:\n%+v", r.want.UID, got, r.want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func answer(t *testing.T, h *Handler, body []byte) admissionv1.AdmissionResponse {
	r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Errorf("answer %q: %v", w.Body.Bytes(), err)
		return admissionv1.AdmissionResponse{}
	}
	return *review.Response
}

func equalResponses(a, b admissionv1.AdmissionResponse) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
