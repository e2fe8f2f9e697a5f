package admissionjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// Review is what the handler reads of an AdmissionReview (readReview): the
// request, with its Pod read in the same pass (PodObject).
type Review struct {
	APIVersion string
	Kind       string
	Request    *Request

	// body holds the request's bytes, which the Pod's Spec is a part of,
	// and patch the buffer the Pod's patch is written into, until Release;
	// mem holds the Pod.
	body, patch *bytes.Buffer
	mem         *podMemory
}

// Release gives the review's buffers and the memory of its Pod back to
// their pools, once its answer is written: the Pod, its Spec and the patch
// made from it are not to be used after. Copying the spec out of the body,
// and a new buffer for each patch, were a fifth of the garbage of an
// admission, and the Pod's lists a third.
func (r *Review) Release() {
	if r.body != nil {
		putBuffer(r.body)
		putBuffer(r.patch)
		r.body, r.patch = nil, nil
	}
	if r.mem != nil {
		r.mem.release()
		r.mem = nil
	}
	if r.Request != nil {
		o := &r.Request.Object
		o.Pod, o.Spec, o.patchBuf, o.layout = nil, nil, nil, nil
	}
}

// Request is what the handler reads of an AdmissionRequest.
type Request struct {
	UID         types.UID
	Resource    metav1.GroupVersionResource
	SubResource string
	Namespace   string
	Operation   admissionv1.Operation
	Object      PodObject
}

// ReadReview reads and decodes the request's AdmissionReview, at most
// MaxRequestBytes of it. An error comes with the status code to answer it
// with. It decodes the review once, with the same case-sensitive decoder the
// API machinery uses, where controller-runtime's admission.Webhook scans it
// three times: that was a seventh of the handler's time
// (docs/benchmarks.md). It accepts only admission.k8s.io/v1, the version the
// webhook is registered for; the framework would decode anything into a v1
// review and answer a Pod or a v9 review as if it were one.
func ReadReview(r *http.Request) (*Review, int32, error) {
	if r.Body == nil {
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return nil, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", identity.Shorten(ct, 64))
	}
	buf := getBuffer()
	kept := false
	defer func() {
		if !kept {
			putBuffer(buf)
		}
	}()
	// The buffer grows as bytes arrive, never to an announced
	// Content-Length: streams announcing 7 MiB and sending nothing once
	// took the process past its memory limit, and 1,600 of them still
	// took 32 KiB each. So the first read goes into a small array, and
	// only once bytes arrived does the buffer grow so that a typical
	// review fits (ReadFrom wants MinRead bytes free to see the end).
	body := io.LimitReader(r.Body, MaxRequestBytes+1)
	var first [bytes.MinRead]byte
	n, err := io.ReadAtLeast(body, first[:], 1)
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		if cl := r.ContentLength; cl > 0 {
			buf.Grow(int(min(cl, initialBodyBuffer)) + bytes.MinRead)
		}
		buf.Write(first[:n])
		_, err = buf.ReadFrom(body)
	}
	if err != nil {
		switch {
		case errors.Is(err, serving.ErrBusy):
			return nil, 0, err
		case errors.Is(err, serving.ErrTooLarge):
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", MaxRequestBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	data := buf.Bytes()
	switch {
	case len(data) == 0:
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	case len(data) > MaxRequestBytes:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", MaxRequestBytes)
	}

	// The review shares no memory with data but the Pod's spec, so the
	// buffer goes back to the pool with the review (Release).
	review := &Review{mem: podMemories.Get().(*podMemory)}
	defer func() {
		if !kept {
			review.mem.release()
		}
	}()
	if err := readReview(data, review); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("decode admission review: %w", err)
	}
	if review.APIVersion != metaTypeV1Review.APIVersion || review.Kind != metaTypeV1Review.Kind {
		return nil, http.StatusBadRequest, fmt.Errorf("got apiVersion %q kind %q, want an admission.k8s.io/v1 AdmissionReview",
			identity.Shorten(review.APIVersion, 64), identity.Shorten(review.Kind, 64))
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, errors.New("admission review has no request")
	}
	obj := &review.Request.Object
	obj.Spec = obj.specAt.of(data)
	review.body, review.patch, kept = buf, getBuffer(), true
	obj.patchBuf = review.patch
	return review, 0, nil
}

// WriteResponse answers with resp in an AdmissionReview. The status is 200
// whatever the outcome: the API server reads the outcome from the review.
func WriteResponse(w http.ResponseWriter, resp admission.Response) {
	buf := getBuffer()
	defer putBuffer(buf)
	b, err := appendReview(buf.AvailableBuffer(), &resp.AdmissionResponse)
	if err != nil {
		// Only a response that cannot be encoded gets here; say so in a
		// review that can.
		failed := admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode admission response: %w", err))
		failed.UID = resp.UID
		b, _ = appendReview(buf.AvailableBuffer(), &failed.AdmissionResponse)
	}
	buf.Write(b) // in place when it fitted the pooled buffer
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
