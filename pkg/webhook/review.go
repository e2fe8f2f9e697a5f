package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// MaxRequestBytes bounds an AdmissionReview body: two objects of at most
// 3 MiB each (etcd's request limit) and the review around them.
const MaxRequestBytes = 7 << 20

// initialBodyBuffer is the most a body's buffer is grown to before its
// bytes arrive.
const initialBodyBuffer = 32 << 10

var metaTypeV1Review = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}

// ServeHTTP answers one AdmissionReview. It speaks the protocol as
// controller-runtime's admission.Webhook does (HTTP 200 with the outcome in
// the response status, also for bad requests), but decodes the review once,
// with the same case-sensitive decoder the API machinery uses, where the
// framework scans it three times: that was a seventh of the handler's time
// (docs/benchmarks.md). It accepts only admission.k8s.io/v1, the version the
// webhook is registered for; the framework would decode anything into a v1
// review and answer a Pod or a v9 review as if it were one.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	review, code, err := readReview(r)
	if errors.Is(err, serving.ErrBusy) {
		// Not an answer about the Pod: the API server may retry it.
		h.Metrics.observe(outcomeError, time.Since(start))
		serving.WriteBusy(w)
		return
	}
	if err != nil {
		// No decision was made, but the metrics count what was answered.
		h.Metrics.observe(outcomeError, time.Since(start))
		writeResponse(w, admission.Errored(code, err))
		return
	}
	resp := h.handleSafely(r, review.Request, start)
	if err := resp.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: review.Request.UID}}); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode patch: %w", err))
		resp.UID = review.Request.UID
	}
	writeResponse(w, resp)
}

// review is what the handler reads of an AdmissionReview: the request,
// with its Pod decoded in the same pass (podObject).
type review struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Request    *request `json:"request"`
}

// handleSafely turns a panic in handle into an error answer: one bad Pod
// must not take the connection, or the process, down with it.
func (h *Handler) handleSafely(r *http.Request, req *request, start time.Time) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			log.FromContext(r.Context()).Error(fmt.Errorf("%v", p), "panic while handling an admission review",
				"uid", req.UID, "namespace", req.Namespace)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("internal error while handling the admission review"))
		}
	}()
	return h.handle(r.Context(), req, start)
}

// readReview reads and decodes the request's AdmissionReview. An error comes
// with the status code to answer it with.
func readReview(r *http.Request) (*review, int32, error) {
	if r.Body == nil {
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return nil, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", identity.Shorten(ct, 64))
	}
	buf := getBuffer()
	defer putBuffer(buf)
	// The buffer grows as bytes arrive, never to an announced
	// Content-Length: streams announcing 7 MiB and sending nothing once
	// took the process past its memory limit. A typical review fits in
	// the first growth (ReadFrom wants MinRead bytes free to see the end).
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(min(n, initialBodyBuffer)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxRequestBytes+1)); err != nil {
		switch {
		case errors.Is(err, serving.ErrBusy):
			return nil, 0, err
		case errors.Is(err, serving.ErrTooLarge):
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", MaxRequestBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	body := buf.Bytes()
	switch {
	case len(body) == 0:
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	case len(body) > MaxRequestBytes:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", MaxRequestBytes)
	}

	// The decoded review shares no memory with body (strings are copied),
	// so the buffer can go back to the pool.
	review := &review{}
	if err := unmarshal(body, review); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("decode admission review: %w", err)
	}
	if review.APIVersion != metaTypeV1Review.APIVersion || review.Kind != metaTypeV1Review.Kind {
		return nil, http.StatusBadRequest, fmt.Errorf("got apiVersion %q kind %q, want an admission.k8s.io/v1 AdmissionReview",
			identity.Shorten(review.APIVersion, 64), identity.Shorten(review.Kind, 64))
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, errors.New("admission review has no request")
	}
	return review, 0, nil
}

// writeResponse answers with resp in an AdmissionReview. The status is 200
// whatever the outcome: the API server reads the outcome from the review.
func writeResponse(w http.ResponseWriter, resp admission.Response) {
	buf := getBuffer()
	defer putBuffer(buf)
	if err := json.NewEncoder(buf).Encode(admissionv1.AdmissionReview{TypeMeta: metaTypeV1Review, Response: &resp.AdmissionResponse}); err != nil {
		// Only a response that cannot be encoded gets here; say so in a
		// review that can.
		failed := admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode admission response: %w", err))
		failed.UID = resp.UID
		buf.Reset()
		_ = json.NewEncoder(buf).Encode(admissionv1.AdmissionReview{TypeMeta: metaTypeV1Review, Response: &failed.AdmissionResponse})
	}
	// With its length known, net/http sends the answer in one piece: past
	// 2 KiB it would otherwise switch to chunked encoding, which took two
	// writes and two TLS records for a typical patch.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// buffers holds request and response buffers between requests: at
// thousands of admissions a second, allocating them anew was a good part of
// the garbage the collector had to chase.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps one rare large review from pinning its buffer.
const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return buffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	buffers.Put(b)
}
