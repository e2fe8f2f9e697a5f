package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/internal/admissionjson"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// ServeHTTP answers one AdmissionReview. It speaks the protocol as
// controller-runtime's admission.Webhook does (HTTP 200 with the outcome in
// the response status, also for bad requests), with the review read and
// written by package admissionjson in one pass each.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	review, code, err := admissionjson.ReadReview(r)
	if errors.Is(err, serving.ErrBusy) {
		// Not an answer about the Pod: the API server may retry it.
		h.Metrics.observe(outcomeError, time.Since(start))
		serving.WriteBusy(w)
		return
	}
	if err != nil {
		// No decision was made, but the metrics count what was answered.
		h.Metrics.observe(outcomeError, time.Since(start))
		admissionjson.WriteResponse(w, admission.Errored(code, err))
		return
	}
	defer review.Release() // after the answer, which holds its patch
	resp := h.handleSafely(r, review.Request, start)
	if err := resp.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: review.Request.UID}}); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode patch: %w", err))
		resp.UID = review.Request.UID
	}
	admissionjson.WriteResponse(w, resp)
}

// handleSafely turns a panic in handle into an error answer: one bad Pod
// must not take the connection, or the process, down with it.
func (h *Handler) handleSafely(r *http.Request, req *admissionjson.Request, start time.Time) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			log.FromContext(r.Context()).Error(fmt.Errorf("%v", p), "panic while handling an admission review",
				"uid", req.UID, "namespace", req.Namespace)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("internal error while handling the admission review"))
		}
	}()
	return h.handle(r.Context(), req, start)
}
