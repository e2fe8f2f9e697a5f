package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/irsa-webhook/irsa-webhook/internal/testcorpus"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// The fuzz targets' seeds live in testdata/fuzz/<target>/, written by
// TestFuzzCorpus with -update. `make fuzz` runs each target for FUZZTIME.

// documentedCodes are the only status codes the webhook answers with.
var documentedCodes = map[int32]bool{200: true, 400: true, 403: true, 413: true, 500: true, 503: true}

// plantedKey is a throwaway private key that some seeds carry in a Pod (an
// env var value, an annotation): a user's mistake the webhook must never
// repeat in a log line or a response.
const plantedKey = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmqoMQZY9jLLCEy0Q
paM1LFe8eOTG63qT8xVVdhYDlamhRANCAAQPWh3s0CP6G78DRK+wPz/MeS90rpaw
nSHKHy5j5uoYqEBZs/VBDUS9X+Y0uRdSaHX4WOZDmKaPc4WgP8fwxQZv
-----END PRIVATE KEY-----
`

// checkNoKeyMaterial fails if out holds any base64 line of plantedKey.
func checkNoKeyMaterial(t *testing.T, what string, out []byte) {
	t.Helper()
	for line := range strings.SplitSeq(plantedKey, "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") && bytes.Contains(out, []byte(line)) {
			t.Fatalf("%s repeats private key material: %s", what, out)
		}
	}
}

// logCapture is a logger whose output a fuzz iteration can inspect.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (c *logCapture) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := bytes.Clone(c.buf.Bytes())
	c.buf.Reset()
	return b
}

func fuzzHandler(logs *logCapture) http.Handler {
	h := &Handler{
		Defaults: NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{
			"team-a/app":     {"eks.amazonaws.com/role-arn": testARN},
			"team-a/default": {"eks.amazonaws.com/role-arn": testARN, "eks.amazonaws.com/audience": "custom"},
			"team-a/bad-arn": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/x\n\"*"},
			"team-b/app":     {"eks.amazonaws.com/role-arn": "arn:aws-cn:iam::111122223333:role/app"},
		},
		// team-a allows its roles; team-b's China role is refused.
		Namespaces: staticNamespaces{
			"team-a": {identity.AllowedRoleARNs: "arn:aws:iam::111122223333:role/*"},
			"team-b": {identity.AllowedRoleARNs: "arn:aws:iam::111122223333:role/*, [bad"},
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(log.IntoContext(r.Context(), logs.logger())))
	})
}

// FuzzReview sends arbitrary bodies through the HTTP handler the server
// mounts. Invariants: no panic; HTTP 200 with an AdmissionReview; only
// documented codes; any patch applies to the request's pod, and a review of
// the patched pod yields no patch (idempotent); neither the response nor the
// log repeats private key material or the request body.
func FuzzReview(f *testing.F) {
	logs := &logCapture{}
	h := fuzzHandler(logs)
	serve := func(body []byte) (*admissionv1.AdmissionReview, []byte, error) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return nil, nil, fmt.Errorf("HTTP %d", rec.Code)
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
			return nil, nil, fmt.Errorf("not an AdmissionReview (%v): %s", err, rec.Body.Bytes())
		}
		return &review, rec.Body.Bytes(), nil
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		logs.take()
		review, out, err := serve(body)
		if err != nil {
			t.Fatal(err)
		}
		if r := review.Response.Result; r != nil && !documentedCodes[r.Code] {
			t.Fatalf("undocumented code %d: %s", r.Code, r.Message)
		}
		checkNoKeyMaterial(t, "response", out)
		logged := logs.take()
		checkNoKeyMaterial(t, "log", logged)
		if len(body) >= 64 && bytes.Contains(logged, body) {
			t.Fatalf("log repeats the request body: %s", logged)
		}
		if len(review.Response.Patch) == 0 {
			return
		}
		if !review.Response.Allowed {
			t.Fatal("a patch on a refusal")
		}
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("patch for an undecodable request")
		}
		patched, err := applyOps(in.Request.Object.Raw, review.Response.Patch)
		if err != nil {
			t.Fatalf("patch does not apply: %v", err)
		}
		in.Request.Object.Raw = patched
		in.Request.Object.Object = nil
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := serve(again)
		if err != nil {
			t.Fatalf("review of the patched pod: %v", err)
		}
		if !second.Response.Allowed || len(second.Response.Patch) != 0 {
			t.Fatalf("review of the patched pod is not a no-op: allowed %t, patch %s", second.Response.Allowed, second.Response.Patch)
		}
	})
}

// FuzzAnnotations drives the decision and the mutation with arbitrary
// annotation values. Invariants: no panic; the pod is allowed; the patch
// applies and only adds; a second pass changes nothing; an invalid role
// annotation injects nothing and says so; no log line or warning repeats the
// private key a pod carries elsewhere.
func FuzzAnnotations(f *testing.F) {
	logs := &logCapture{}
	f.Fuzz(func(t *testing.T, arn, audience, regional, saExp, podExp, skip, optOut string) {
		logs.take()
		sas := staticServiceAccounts{"team-a/app": {
			"eks.amazonaws.com/role-arn":               arn,
			"eks.amazonaws.com/audience":               audience,
			"eks.amazonaws.com/sts-regional-endpoints": regional,
			"eks.amazonaws.com/token-expiration":       saExp,
		}}
		podAnn := map[string]string{
			"eks.amazonaws.com/token-expiration": podExp,
			"eks.amazonaws.com/skip-containers":  skip,
			"example.com/leaked":                 plantedKey,
		}
		if optOut != "" {
			podAnn["eks.amazonaws.com/skip-pod-identity-webhook"] = optOut
		}
		pod := map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "p", "namespace": "team-a", "annotations": podAnn},
			"spec": map[string]any{"serviceAccountName": "app", "containers": []any{
				map[string]any{"name": "app", "image": "app", "env": []any{map[string]any{"name": "KEY", "value": plantedKey}}},
				map[string]any{"name": "sidecar", "image": "s"},
			}},
		}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Skip()
		}
		h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: sas}
		ctx := log.IntoContext(context.Background(), logs.logger())
		resp := h.Handle(ctx, podCreate(raw))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		patched := applyPatch(t, raw, resp)
		checkOnlyAdds(t, raw, resp)
		if again := h.Handle(ctx, podCreate(patched)); len(again.Patch) != 0 {
			t.Fatalf("second pass patches: %v", again.Patch)
		}
		patchedPod := len(resp.Patch) > 0
		if !validARN(arn) && patchedPod {
			t.Fatalf("invalid role %q was injected", arn)
		}
		skipped := map[string]bool{}
		for _, c := range strings.Split(skip, ",") {
			skipped[strings.TrimSpace(c)] = true
		}
		if optOut == "" && validARN(arn) && !skipped["app"] && !patchedPod {
			t.Fatalf("valid role %q for a container not skipped (%q) was not injected", arn, skip)
		}
		if optOut == "" && !validARN(arn) && !strings.Contains(strings.Join(resp.Warnings, "\n"), "role-arn") {
			t.Fatalf("invalid role %q injected nothing without a warning: %q", arn, resp.Warnings)
		}
		if !holdsKey(arn, audience, regional, saExp, podExp, skip, optOut) {
			checkNoKeyMaterial(t, "warnings", []byte(strings.Join(resp.Warnings, "\n")))
		}
		checkNoKeyMaterial(t, "log", logs.take())
	})
}

// TestFuzzCorpus keeps testdata/fuzz in step with the seeds below (FuzzReview's
// are internal/admissionjson's FuzzDecode seeds too): -update
// rewrites the files, otherwise each must exist with this content.
func TestFuzzCorpus(t *testing.T) {
	review := func(uid, namespace, operation string, pod []byte) []byte {
		b, err := json.Marshal(map[string]any{
			"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"request": map[string]any{
				"uid": uid, "kind": map[string]any{"version": "v1", "kind": "Pod"},
				"resource":  map[string]any{"version": "v1", "resource": "pods"},
				"namespace": namespace, "operation": operation, "object": json.RawMessage(pod),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reviews := map[string][]byte{
		"plain-pod":        review("u1", "team-a", "CREATE", []byte(plainPod)),
		"update-ignored":   review("u2", "team-a", "UPDATE", []byte(plainPod)),
		"no-object":        []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":null}}`),
		"no-request":       []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
		"wrong-version":    []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`),
		"deep-nesting":     []byte(strings.Repeat("[", 64)),
		"not-utf8":         []byte("\xff\xfe"),
		"pod-with-key":     review("u3", "team-a", "CREATE", podWith(t, "app", map[string]string{"example.com/leaked": plantedKey}, 2)),
		"invalid-arn":      review("u4", "team-a", "CREATE", podWith(t, "bad-arn", nil, 1)),
		"china-partition":  review("u5", "team-b", "CREATE", podWith(t, "app", nil, 1)),
		"default-sa":       review("u6", "team-a", "CREATE", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"p-"},"spec":{"containers":[{"name":"a","image":"a"}]}}`)),
		"missing-sa":       review("u7", "team-a", "CREATE", podWith(t, "nobody", nil, 1)),
		"skip-and-expires": review("u8", "team-a", "CREATE", podWith(t, "app", map[string]string{"eks.amazonaws.com/skip-containers": "c0,,c9", "eks.amazonaws.com/token-expiration": "1e3"}, 3)),
	}
	// Every golden pod is a seed too.
	dirs, _ := filepath.Glob("testdata/golden/*/pod.json")
	for _, p := range dirs {
		raw := readFile(t, p)
		var meta struct {
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(raw, &meta)
		reviews["golden-"+filepath.Base(filepath.Dir(p))] = review("g", meta.Metadata.Namespace, "CREATE", raw)
	}
	annotations := map[string][]string{
		"valid":            {testARN, "sts.amazonaws.com", "true", "3600", "7200", "app,sidecar", ""},
		"injection":        {"arn:aws:iam::111122223333:role/x\n\"*", "a b", "yes", "-1", "1e9", ",,,", ""},
		"control-chars":    {testARN, "\x00", "false", "99999999999999999999", "\u202e", " app ", ""},
		"opted-out":        {testARN, "sts.amazonaws.com", "true", "3600", "3600", "", "true"},
		"gov-partition":    {"arn:aws-us-gov:iam::111122223333:role/path/to/app", "sts.amazonaws.com", "", "", "", "sidecar", ""},
		"commas":           {testARN, "", "", "", "", strings.Repeat(",", 4096), ""},
		"max-length-arn":   {"arn:aws:iam::111122223333:role/" + strings.Repeat("p/", 900) + "n", "", "", "", "", "", ""},
		"not-utf8":         {"arn:aws:iam::111122223333:role/\xff", "\xfe", "\xff", "\xff", "\xff", "\xff", ""},
		"whitespace-arn":   {" " + testARN + " ", "sts.amazonaws.com ", " true ", " 3600 ", "\t7200", "app\n", ""},
		"empty-everything": {"", "", "", "", "", "", ""},
	}
	reviewSeeds := map[string][]byte{}
	for name, b := range reviews {
		reviewSeeds[name] = testcorpus.Encode(b)
	}
	annotationSeeds := map[string][]byte{}
	for name, vs := range annotations {
		args := make([]any, len(vs))
		for i, v := range vs {
			args[i] = v
		}
		annotationSeeds[name] = testcorpus.Encode(args...)
	}
	testcorpus.Check(t, "FuzzReview", reviewSeeds, *update)
	testcorpus.Check(t, "FuzzAnnotations", annotationSeeds, *update)
}

func validARN(s string) bool { return identity.ValidateRoleARN(s) == nil }

// holdsKey reports whether any of values carries a line of plantedKey, which
// the webhook may then rightly quote back.
func holdsKey(values ...string) bool {
	for _, v := range values {
		for line := range strings.SplitSeq(plantedKey, "\n") {
			if len(line) >= 40 && strings.Contains(v, line) {
				return true
			}
		}
	}
	return false
}
