package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/ptr"
)

// FloorHandler is the least an admission webhook can do: decode the
// AdmissionReview and answer "allowed" for its uid, with no lookup and no
// patch. irsa-webhook is measured against it.
// Each admission it answers adds one to calls, if calls is not nil.
func FloorHandler(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(io.LimitReader(r.Body, 7<<20)).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad admission review", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
		if calls != nil {
			calls.Add(1)
		}
	})
}

// Where the floor process serves: the floor at FloorPath, the mutating
// floor at MutatingFloorPath, and at FloorCallsPath how many admissions
// each has answered ("FLOOR MUTATING"), so a caller can tell which one the
// API server calls.
const (
	FloorPath         = "/mutate"
	MutatingFloorPath = "/mutate-same"
	FloorCallsPath    = "/calls"
)

// MutatingFloorHandler is the least a webhook that makes irsa-webhook's
// change can do: it decodes the review as FloorHandler does and answers
// with the patch irsa-webhook gave the first review it was sent, learned
// once by sending that review to learnFrom. So the API server pays for
// applying the same change, in the same patch, as through irsa-webhook,
// and the webhook does nothing to find it: what irsa-webhook adds over this
// floor is its own work, what this floor adds over FloorHandler's is the
// API server's cost of a mutation.
//
// irsa-webhook's patch sets the whole spec, so the learned patch holds the
// first Pod's: it fits only Pods of the same spec, as the benchmark's are.
// The one part of that spec that differs from create to create is the
// name of the token volume the ServiceAccount admission plugin adds
// (kube-api-access- and 5 random characters); where the learned patch
// carries it, it is replaced by this review's. A review the learned patch
// does not fit gets an error, which fails the create: the benchmark then
// stops rather than measure another change.
func MutatingFloorHandler(learnFrom string, client *http.Client, calls *atomic.Int64) http.Handler {
	type learned struct {
		patch  []byte
		volume []byte // the generated volume name in the learned review, or nil
	}
	var (
		known atomic.Pointer[learned] // nil until learned; read without a lock after
		mu    sync.Mutex              // one review learns, the others wait for it
	)
	learn := func(ctx context.Context, body []byte) ([]byte, []byte, error) {
		if l := known.Load(); l != nil {
			return l.patch, l.volume, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if l := known.Load(); l != nil {
			return l.patch, l.volume, nil
		}
		p, err := askPatch(ctx, client, learnFrom, body)
		if err != nil {
			return nil, nil, err
		}
		l := &learned{patch: p, volume: generatedVolume(body)}
		known.Store(l)
		return l.patch, l.volume, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 7<<20))
		var review admissionv1.AdmissionReview
		if err != nil || json.Unmarshal(body, &review) != nil || review.Request == nil {
			http.Error(w, "bad admission review", http.StatusBadRequest)
			return
		}
		p, learnedVolume, err := learn(r.Context(), body)
		if err == nil && learnedVolume != nil {
			v := generatedVolume(review.Request.Object.Raw)
			if v == nil {
				err = errors.New("the review has no generated token volume, the learned patch names one")
			}
			p = bytes.ReplaceAll(p, learnedVolume, v)
		}
		if err != nil {
			http.Error(w, "mutating floor: "+err.Error(), http.StatusInternalServerError)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: p, PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
		if calls != nil {
			calls.Add(1)
		}
	})
}

// askPatch sends the review body to url and returns the patch of its
// answer, which must allow and change the Pod.
func askPatch(ctx context.Context, client *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("learn the patch from %s: %w", url, err)
	}
	defer resp.Body.Close()
	var answer admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(resp.Body, 7<<20)).Decode(&answer); err != nil {
		return nil, fmt.Errorf("learn the patch from %s: %s: %w", url, resp.Status, err)
	}
	if a := answer.Response; a == nil || !a.Allowed || len(a.Patch) == 0 {
		return nil, fmt.Errorf("learn the patch from %s: the answer allows nothing or changes nothing: %+v", url, a)
	}
	return answer.Response.Patch, nil
}

// generatedVolumePrefix starts the name of the token volume the
// ServiceAccount admission plugin adds to a Pod, as a JSON string.
var generatedVolumePrefix = []byte(`"kube-api-access-`)

// generatedVolume is the first such name in raw, quotes included, or nil.
func generatedVolume(raw []byte) []byte {
	i := bytes.Index(raw, generatedVolumePrefix)
	if i < 0 {
		return nil
	}
	n := bytes.IndexByte(raw[i+1:], '"')
	if n < 0 {
		return nil
	}
	return raw[i : i+n+2]
}

// ServeFloor serves FloorHandler at /mutate on addr until ctx ends, with
// certDir's tls.crt and tls.key and the TLS settings irsa-webhook serve is
// given by the harness: TLS 1.2 or later, and the application protocols it
// offers, protos (as irsa-webhook serve: "h2", "http/1.1"). If learnFrom is
// not empty, it serves MutatingFloorHandler too, learning from learnFrom
// (irsa-webhook's URL) with roots trusted.
func ServeFloor(ctx context.Context, addr, certDir string, protos []string, learnFrom string, roots *x509.CertPool) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("load floor serving certificate: %w", err)
	}
	mux := http.NewServeMux()
	var calls, mutatingCalls atomic.Int64
	mux.Handle(FloorPath, FloorHandler(&calls))
	if learnFrom != "" {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
		mux.Handle(MutatingFloorPath, MutatingFloorHandler(learnFrom, client, &mutatingCalls))
	}
	mux.HandleFunc(FloorCallsPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprint(w, calls.Load(), " ", mutatingCalls.Load())
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Without this, net/http serves HTTP/2 only when it configured TLS
		// itself; with it, as NextProtos offers.
		Protocols: floorProtocols(protos),
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			NextProtos:   protos,
		},
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve floor: %w", err)
	}
	return nil
}

func floorProtocols(protos []string) *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(slices.Contains(protos, "http/1.1"))
	p.SetHTTP2(slices.Contains(protos, "h2"))
	return &p
}
