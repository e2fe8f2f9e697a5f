package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// ReviewClient sends AdmissionReviews straight to the webhook over TLS, as
// a replica of the API server does. Fault tests use it while the API server
// they run against is down, and to count every request themselves.
type ReviewClient struct {
	URL    string
	Client *http.Client
}

// ReviewClient returns a client for the Stack's webhook that trusts the
// Stack's CA. Without keepAlive every request opens a new connection and so
// goes through a TLS handshake of its own.
func (s *Stack) ReviewClient(keepAlive bool) *ReviewClient {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.PKI.CertPool(), MinVersion: tls.VersionTLS12},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 32,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &ReviewClient{URL: s.Webhook.URL, Client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// ReviewResult is the outcome of one AdmissionReview sent by Send.
type ReviewResult struct {
	// Response is nil when Err is set.
	Response *admissionv1.AdmissionResponse
	// Err is why no AdmissionReview came back.
	Err error
	// Written is true once the whole request was written to a connection:
	// the webhook may have started on it, so a failure after that is the
	// webhook's, never a reason to retry.
	Written bool
	// HandshakeErr is the TLS handshake's error, if one failed.
	HandshakeErr error
	// Retries counts attempts SendRetrying repeated after a connection
	// failure that happened before the request was written.
	Retries int
}

// PodReview builds the AdmissionReview an API server sends for creating pod
// in namespace.
func PodReview(namespace string, pod *corev1.Pod) (*admissionv1.AdmissionReview, error) {
	pod = pod.DeepCopy()
	pod.Namespace = namespace
	pod.APIVersion, pod.Kind = "v1", "Pod"
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("encode pod %s/%s: %w", namespace, pod.Name, err)
	}
	uid := make([]byte, 16)
	_, _ = rand.Read(uid)
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             types.UID(hex.EncodeToString(uid)),
			Kind:            metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:        metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			RequestKind:     &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			RequestResource: &metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name:            pod.Name,
			Namespace:       namespace,
			Operation:       admissionv1.Create,
			UserInfo:        authenticationv1.UserInfo{Username: "e2e-admin", Groups: []string{"system:masters", "system:authenticated"}},
			Object:          runtime.RawExtension{Raw: raw},
			Options:         runtime.RawExtension{Raw: []byte(`{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}`)},
		},
	}, nil
}

// Send posts one AdmissionReview for creating pod in namespace and returns
// the response, checking that it answers the request's uid.
func (c *ReviewClient) Send(ctx context.Context, namespace string, pod *corev1.Pod) ReviewResult {
	var res ReviewResult
	review, err := PodReview(namespace, pod)
	if err != nil {
		return res.fail(err)
	}
	body, err := json.Marshal(review)
	if err != nil {
		return res.fail(fmt.Errorf("encode admission review: %w", err))
	}
	var written atomic.Bool
	var handshakeErr atomic.Value
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil {
				handshakeErr.Store(err)
			}
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				written.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return res.fail(fmt.Errorf("post admission review: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Client.Do(req)
	res.Written = written.Load()
	if e, ok := handshakeErr.Load().(error); ok {
		res.HandshakeErr = e
	}
	if err != nil {
		return res.fail(fmt.Errorf("post admission review to %s: %w", c.URL, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return res.fail(fmt.Errorf("read admission review response: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return res.fail(fmt.Errorf("admission review: HTTP %d: %.300s", resp.StatusCode, data))
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		return res.fail(fmt.Errorf("decode admission review response: %w", err))
	}
	if out.Response == nil || out.Response.UID != review.Request.UID {
		return res.fail(fmt.Errorf("admission review response does not answer uid %s", review.Request.UID))
	}
	res.Response = out.Response
	return res
}

func (r ReviewResult) fail(err error) ReviewResult {
	r.Err = err
	return r
}

// SendRetrying is Send that tries again, with a short backoff, while the
// connection fails before the request was written (refused, reset or closed
// during the handshake): such a request never reached the webhook, and an
// API server would fail over or retry. A failure after the request was
// written is returned as it is. The retries are bounded by ctx.
func (c *ReviewClient) SendRetrying(ctx context.Context, namespace string, pod *corev1.Pod) ReviewResult {
	delay := 20 * time.Millisecond
	retries := 0
	for {
		res := c.Send(ctx, namespace, pod)
		res.Retries = retries
		if res.Err == nil || res.Written || !connectionFailure(res.Err) || ctx.Err() != nil {
			return res
		}
		retries++
		select {
		case <-ctx.Done():
			return res
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// connectionFailure reports whether a Send error is a connection that
// failed before any request went over it.
func connectionFailure(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}

// Verdict is what an admission response did to a Pod.
type Verdict string

// Verdicts of Judge.
const (
	// Injected: allowed, and the patch gives every container the token
	// volume and the expected role.
	Injected Verdict = "injected"
	// AllowedBare: allowed without any credentials.
	AllowedBare Verdict = "allowed-without-credentials"
	// DeniedLookup: denied because the ServiceAccount could not be looked
	// up, with the message saying so.
	DeniedLookup Verdict = "denied-lookup"
	// Broken: anything else (no response, an error, a patch that does not
	// apply or injects the wrong thing, a denial without the message).
	Broken Verdict = "broken"
)

// Judge classifies an admission response to pod against roleARN, the role
// the Pod's ServiceAccount asks for ("" for one that asks for none). The
// string explains a Broken verdict.
func Judge(pod *corev1.Pod, namespace string, res ReviewResult, roleARN string) (Verdict, string) {
	if res.Err != nil {
		return Broken, res.Err.Error()
	}
	r := res.Response
	if !r.Allowed {
		msg := ""
		code := int32(0)
		if r.Result != nil {
			msg, code = r.Result.Message, r.Result.Code
		}
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		want := "could not look up service account " + namespace + "/" + sa
		if code == http.StatusServiceUnavailable && strings.Contains(msg, want) && strings.Contains(msg, "not admitted without them") {
			return DeniedLookup, ""
		}
		return Broken, fmt.Sprintf("denied with code %d and message %q, want 503 saying %q", code, msg, want)
	}
	if len(r.Patch) == 0 {
		return AllowedBare, ""
	}
	mutated, err := ApplyPatch(pod, r.Patch)
	if err != nil {
		return Broken, err.Error()
	}
	if !HasTokenVolume(mutated) {
		return Broken, "allowed with a patch that adds no token volume"
	}
	for _, c := range slices.Concat(mutated.Spec.InitContainers, mutated.Spec.Containers) {
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == mutate.EnvRoleARN })
		if i < 0 || c.Env[i].Value != roleARN {
			return Broken, fmt.Sprintf("container %s has no %s=%s", c.Name, mutate.EnvRoleARN, roleARN)
		}
	}
	return Injected, ""
}

// ApplyPatch applies a JSONPatch from an admission response to pod.
func ApplyPatch(pod *corev1.Pod, patch []byte) (*corev1.Pod, error) {
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	var mutated corev1.Pod
	if err := json.Unmarshal(out, &mutated); err != nil {
		return nil, fmt.Errorf("decode patched pod: %w", err)
	}
	return &mutated, nil
}
