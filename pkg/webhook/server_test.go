package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

const testARN = "arn:aws:iam::111122223333:role/app-reader"

// testServer is the real HTTPS webhook server on a loopback port.
type testServer struct {
	url    string
	addr   string
	client *http.Client
	ca     *testcerts.CA
	dir    string
}

func startServer(t *testing.T, kt testcerts.KeyType, sas ServiceAccounts) *testServer {
	t.Helper()
	return startServerWith(t, kt, &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: sas}, nil)
}

// startServerWith starts the server for h; limits, when not nil, replaces
// the server's limits before it starts; wrap, when given, wraps h.
func startServerWith(t *testing.T, kt testcerts.KeyType, h *Handler, limits *Limits, wrap ...func(http.Handler) http.Handler) *testServer {
	t.Helper()
	ca, err := testcerts.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Serving(kt)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pair.Write(dir); err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.Port = freePort(t)
	cfg.CertDir = dir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = h
	for _, w := range wrap {
		handler = w(handler)
	}
	srv := NewServer(cfg, handler)
	if limits != nil {
		srv.(*Server).Limits = *limits
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	ts := &testServer{
		url:  fmt.Sprintf("https://127.0.0.1:%d%s", cfg.Port, MutatePath),
		addr: fmt.Sprintf("127.0.0.1:%d", cfg.Port),
		ca:   ca,
		dir:  dir,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		}},
	}
	eventually(t, 10*time.Second, func() error { return srv.StartedChecker()(nil) })
	return ts
}

func (s *testServer) post(t *testing.T, contentType string, body []byte) (int, *admissionv1.AdmissionReview) {
	t.Helper()
	resp, err := s.client.Post(s.url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	review := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(b, review); err != nil || review.Response == nil {
		t.Fatalf("response is not an AdmissionReview (%v): %s", err, b)
	}
	return resp.StatusCode, review
}

func reviewBody(t *testing.T, uid string, pod []byte) []byte {
	t.Helper()
	req := podCreate(pod)
	req.UID = typesUID(uid)
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metaTypeAdmissionReview,
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const plainPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team-a"},"spec":{"serviceAccountName":"app","containers":[{"name":"app","image":"app"}]}}`

func TestServerMutatesOverTLS(t *testing.T) {
	for _, kt := range []testcerts.KeyType{testcerts.ECDSA, testcerts.RSA} {
		t.Run(map[testcerts.KeyType]string{testcerts.ECDSA: "ecdsa", testcerts.RSA: "rsa"}[kt], func(t *testing.T) {
			s := startServer(t, kt, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
			code, review := s.post(t, "application/json", reviewBody(t, "uid-1", []byte(plainPod)))
			if code != http.StatusOK || !review.Response.Allowed || string(review.Response.UID) != "uid-1" {
				t.Fatalf("got HTTP %d, response %+v", code, review.Response)
			}
			if review.Response.PatchType == nil || *review.Response.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Fatalf("no JSON patch in %+v", review.Response)
			}
			patched, err := applyOps([]byte(plainPod), review.Response.Patch)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"AWS_ROLE_ARN","value":"` + testARN, `"name":"aws-iam-token"`, `"audience":"sts.amazonaws.com"`} {
				if !strings.Contains(string(patched), want) {
					t.Errorf("patched pod lacks %s: %s", want, patched)
				}
			}
		})
	}
}

// TestServerAnswersInOnePiece: an answer of any size comes with its length,
// not in chunks, which took more writes and TLS records for each review.
func TestServerAnswersInOnePiece(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
	for name, pod := range map[string][]byte{"plain": []byte(plainPod), "typical": typicalPod(""), "large": largePod("")} {
		resp, err := s.client.Post(s.url, "application/json", bytes.NewReader(reviewBody(t, "uid-1", pod)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"patch":`)) {
			t.Fatalf("%s: no patch in %s", name, b)
		}
		if resp.ContentLength != int64(len(b)) || len(resp.TransferEncoding) != 0 {
			t.Errorf("%s: %d-byte answer with Content-Length %d and Transfer-Encoding %q, want its length and no chunks",
				name, len(b), resp.ContentLength, resp.TransferEncoding)
		}
	}
}

// Bad input gets a clear 4xx, as the HTTP status or as the response's
// status code, and never a 5xx or a patch.
func TestServerRejectsBadInput(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
	valid := reviewBody(t, "uid-1", []byte(plainPod))
	huge := append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"x":"`),
		bytes.Repeat([]byte("a"), 8<<20)...)
	huge = append(huge, []byte(`"}}}`)...)
	cases := map[string]struct {
		contentType string
		body        []byte
		wantCode    int32
		wantMessage string
	}{
		"truncated JSON":     {"application/json", valid[:len(valid)/2], 400, "unexpected"},
		"not JSON":           {"application/json", []byte("hello"), 400, ""},
		"wrong content type": {"text/plain", valid, 400, "contentType"},
		"empty body":         {"application/json", nil, 400, "empty"},
		"body over 7 MiB":    {"application/json", huge, 413, "too large"},
		"wrong kind": {"application/json", bytes.Replace(valid, []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"Pod"`), 1),
			400, ""},
		"wrong apiVersion": {"application/json", bytes.Replace(valid, []byte(`admission.k8s.io/v1`), []byte(`admission.k8s.io/v9`), 1),
			400, ""},
		"missing uid": {"application/json", bytes.Replace(valid, []byte(`"uid":"uid-1",`), nil, 1), 400, "no uid"},
		"pod that is not a pod": {"application/json", reviewBody(t, "uid-2", []byte(`{"spec":{"containers":"nope"}}`)),
			400, "decode pod"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, review := s.post(t, tc.contentType, tc.body)
			r := review.Response
			if code >= 500 || r.Allowed || r.Result == nil || r.Result.Code != tc.wantCode || len(r.Patch) > 0 {
				t.Fatalf("HTTP %d, response %+v; want status code %d and no patch", code, r, tc.wantCode)
			}
			if !strings.Contains(r.Result.Message, tc.wantMessage) {
				t.Errorf("message %q does not mention %q", r.Result.Message, tc.wantMessage)
			}
		})
	}
	// Still healthy after all that.
	if code, review := s.post(t, "application/json", valid); code != 200 || !review.Response.Allowed {
		t.Fatalf("server unhealthy after bad input: HTTP %d %+v", code, review.Response)
	}
}

// A ServiceAccount that cannot be looked up denies the pod; it is never
// admitted as if it had no role.
func TestServerDeniesWhenLookupFails(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, failingServiceAccounts{err: errors.New("connection refused")})
	code, review := s.post(t, "application/json", reviewBody(t, "uid-1", []byte(plainPod)))
	r := review.Response
	if code != 200 || r.Allowed || r.Result.Code != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d, response %+v; want denied with 503", code, r)
	}
	for _, want := range []string{"team-a/app", "connection refused", "retry"} {
		if !strings.Contains(r.Result.Message, want) {
			t.Errorf("message %q does not mention %q", r.Result.Message, want)
		}
	}
}

func TestServerReloadsCertificate(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{})
	next, err := s.ca.Serving(testcerts.RSA)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Write(s.dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(s.url, MutatePath), "https://"), &tls.Config{RootCAs: s.ca.Pool()})
		if err != nil {
			return err
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(next.Cert.SerialNumber) != 0 {
			return fmt.Errorf("still serving serial %s", got)
		}
		return nil
	})
}

func TestServerRefusesOldTLS(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{})
	addr := strings.TrimPrefix(strings.TrimSuffix(s.url, MutatePath), "https://")
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.ca.Pool(), MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Errorf("TLS version %x was accepted", v)
		}
	}
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
