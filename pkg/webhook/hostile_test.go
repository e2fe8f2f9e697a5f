package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

// hostileServiceAccounts are ServiceAccounts whose role annotation tries to
// smuggle something into the pod or the trust decision.
var hostileServiceAccounts = staticServiceAccounts{
	"team-a/app":             {"eks.amazonaws.com/role-arn": testARN},
	"team-a/arn-newline":     {"eks.amazonaws.com/role-arn": testARN + "\nAWS_ROLE_ARN=arn:aws:iam::999999999999:role/admin"},
	"team-a/arn-quote":       {"eks.amazonaws.com/role-arn": `arn:aws:iam::111122223333:role/x","value":"y`},
	"team-a/arn-star":        {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/*"},
	"team-a/arn-variable":    {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/${aws:username}"},
	"team-a/arn-wildcard-id": {"eks.amazonaws.com/role-arn": "arn:aws:iam::*:role/app"},
	"team-a/arn-control":     {"eks.amazonaws.com/role-arn": testARN + "\x1b[2K\r"},
	"team-a/arn-not-utf8":    {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/\xff\xfe"},
	"team-a/arn-long":        {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/" + strings.Repeat("a/", 1<<20)},
}

// podWith renders a Pod for ServiceAccount sa with the given annotations and
// containers.
func podWith(t *testing.T, sa string, annotations map[string]string, containers int) []byte {
	t.Helper()
	cs := make([]map[string]any, containers)
	for i := range cs {
		cs[i] = map[string]any{"name": fmt.Sprintf("c%d", i), "image": "app"}
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "namespace": "team-a", "annotations": annotations},
		"spec":     map[string]any{"serviceAccountName": sa, "containers": cs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServerHostileInput sends hand-written hostile requests through the
// real HTTPS server. Each gets a clear 4xx, or is allowed with a warning
// that names the problem (and then gets no credentials), or is allowed with
// a patch that applies; the server answers a normal request after each.
func TestServerHostileInput(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, hostileServiceAccounts)
	// A bound, not a speed requirement: the 10,000-container patch is slow
	// under the race detector.
	s.client.Timeout = time.Minute
	valid := reviewBody(t, "uid-1", []byte(plainPod))

	review := func(podJSON []byte) []byte { return reviewBody(t, "uid-h", podJSON) }
	deep := func(n int) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":` +
			strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) + `}}}}`)
	}
	tenMiB := review(podWith(t, "app", map[string]string{"x": strings.Repeat("a", 10<<20)}, 1))
	nonUTF8Name := bytes.Replace(valid, []byte(`"name":"app"`), []byte("\"name\":\"app\xff\xfe\""), 1)

	type want struct {
		code     int32  // a 4xx refusal, or 0 for allowed
		patch    bool   // allowed with a patch
		warning  string // allowed with a warning containing this
		message  string // the refusal's message contains this
		noInject bool   // allowed, and no patch
	}
	cases := map[string]struct {
		body []byte
		want want
	}{
		"truncated JSON":                        {valid[:len(valid)-7], want{code: 400, message: "unexpected"}},
		"wrong apiVersion":                      {bytes.Replace(valid, []byte(`admission.k8s.io/v1"`), []byte(`admission.k8s.io/v1beta1"`), 1), want{code: 400, message: "admission.k8s.io/v1beta1"}},
		"wrong kind":                            {bytes.Replace(valid, []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"ConversionReview"`), 1), want{code: 400, message: "ConversionReview"}},
		"missing uid":                           {bytes.Replace(valid, []byte(`"uid":"uid-1",`), nil, 1), want{code: 400, message: "no uid"}},
		"10 MiB body":                           {tenMiB, want{code: 413, message: "too large"}},
		"deeply nested JSON":                    {deep(100_000), want{code: 400, message: "exceeded max depth"}},
		"nested JSON within limits, wrong type": {deep(500), want{code: 400, message: "decode pod"}},
		"non-UTF-8 container name":              {nonUTF8Name, want{patch: true}},
		"non-UTF-8 annotation value": {review(podWith(t, "app", map[string]string{"eks.amazonaws.com/token-expiration": "36\xff00"}, 1)),
			want{patch: true, warning: "not a whole number"}},
		"pod with 10,000 containers": {review(podWith(t, "app", nil, 10_000)), want{patch: true}},
		"annotation with control characters": {review(podWith(t, "app", map[string]string{"eks.amazonaws.com/token-expiration": "3600\x00\x1b[31m\r\n"}, 1)),
			want{patch: true, warning: "not a whole number"}},
		"skip-containers with 1 MB of commas": {review(podWith(t, "app", map[string]string{"eks.amazonaws.com/skip-containers": strings.Repeat(",", 1<<20)}, 2)),
			want{patch: true}},
		"role ARN with a newline":            {review(podWith(t, "arn-newline", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN with quotes":               {review(podWith(t, "arn-quote", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN with *":                    {review(podWith(t, "arn-star", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN with a policy variable":    {review(podWith(t, "arn-variable", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN with * for the account":    {review(podWith(t, "arn-wildcard-id", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN with terminal escapes":     {review(podWith(t, "arn-control", nil, 1)), want{noInject: true, warning: "white space"}},
		"role ARN that is not UTF-8":         {review(podWith(t, "arn-not-utf8", nil, 1)), want{noInject: true, warning: "not an IAM role ARN"}},
		"role ARN of 2 MB":                   {review(podWith(t, "arn-long", nil, 1)), want{noInject: true, warning: "longer than any IAM role ARN"}},
		"review of a pod that is not a pod":  {review([]byte(`{"spec":{"containers":"nope"}}`)), want{code: 400, message: "decode pod"}},
		"review whose object is a JSON list": {review([]byte(`[1,2,3]`)), want{code: 400, message: "decode pod"}},
		// The object is decoded as a Pod before the resource is known; for
		// anything else its shape does not matter.
		"review of a ConfigMap shaped unlike a pod": {[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"c","resource":{"version":"v1","resource":"configmaps"},"operation":"CREATE","object":{"data":{"a":"b"},"spec":{"containers":"nope"}},"namespace":"team-a"}}`),
			want{noInject: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, rv := s.post(t, "application/json", tc.body)
			r := rv.Response
			if code != http.StatusOK {
				t.Fatalf("HTTP %d; the framework answers every review with 200 and a status", code)
			}
			if tc.want.code != 0 {
				if r.Allowed || r.Result == nil || r.Result.Code != tc.want.code || len(r.Patch) > 0 {
					t.Fatalf("response %+v; want refused with %d and no patch", r, tc.want.code)
				}
				if !strings.Contains(r.Result.Message, tc.want.message) {
					t.Errorf("message %q does not mention %q", r.Result.Message, tc.want.message)
				}
			} else {
				if !r.Allowed {
					t.Fatalf("refused: %+v", r.Result)
				}
				if got := len(r.Patch) > 0; got != tc.want.patch {
					t.Errorf("patched = %t, want %t", got, tc.want.patch)
				}
				if tc.want.patch {
					var in struct {
						Request struct {
							Object json.RawMessage `json:"object"`
						} `json:"request"`
					}
					if err := json.Unmarshal(tc.body, &in); err != nil {
						t.Fatal(err)
					}
					if _, err := applyOps(in.Request.Object, r.Patch); err != nil {
						t.Errorf("patch does not apply: %v", err)
					}
				}
				if tc.want.warning != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tc.want.warning) {
					t.Errorf("warnings %q do not mention %q", r.Warnings, tc.want.warning)
				}
			}
			// Whatever comes back is printable: no control character of
			// the input reaches a terminal through a message or warning.
			texts := r.Warnings
			if r.Result != nil {
				texts = append(texts, r.Result.Message)
			}
			for _, text := range texts {
				if i := strings.IndexFunc(text, func(c rune) bool { return !unicode.IsPrint(c) }); i >= 0 {
					t.Errorf("response text has a non-printable character at %d: %q", i, text)
				}
				if len(text) > 4096 {
					t.Errorf("response text is %d bytes long", len(text))
				}
			}
			s.healthy(t)
		})
	}
}
