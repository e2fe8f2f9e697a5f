package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
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

// FloorCallsPath answers how many admissions the floor has answered, so a
// caller can tell when the API server calls it.
const FloorCallsPath = "/calls"

// ServeFloor serves FloorHandler at /mutate on addr until ctx ends, with
// certDir's tls.crt and tls.key and the TLS settings irsa-webhook serve is
// given by the harness: TLS 1.2 or later, and the application protocols it
// offers, protos (as irsa-webhook serve: "h2", "http/1.1").
func ServeFloor(ctx context.Context, addr, certDir string, protos []string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("load floor serving certificate: %w", err)
	}
	mux := http.NewServeMux()
	var calls atomic.Int64
	mux.Handle("/mutate", FloorHandler(&calls))
	mux.HandleFunc(FloorCallsPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprint(w, calls.Load()) })
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
