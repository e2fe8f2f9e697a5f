package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

// ms is the durations of v milliseconds.
func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestQuantile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for name, tc := range map[string]struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		"empty":           {nil, 0.5, 0},
		"one":             {ms(7), 0.99, 7 * time.Millisecond},
		"median of 1..4":  {ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		"p99 of 1..100":   {ms(hundred...), 0.99, 99 * time.Millisecond},
		"p99.9 of 1..100": {ms(hundred...), 0.999, 100 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, quantile(tc.sorted, tc.q)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFloorHandler(t *testing.T) {
	body, err := ReviewBody(TypicalPod("bench", "app"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		body     []byte
		wantCode int
	}{
		"review":     {body, http.StatusOK},
		"not json":   {[]byte("{"), http.StatusBadRequest},
		"no request": {[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			FloorHandler(nil).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(tc.body)))
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantCode != http.StatusOK {
				return
			}
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := &admissionv1.AdmissionResponse{UID: "3f8a1c62-5d4e-4b8a-9d2e-6a1b7c0e9f11", Allowed: true}
			if diff := cmp.Diff(want, got.Response); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if !bytes.Contains(w.Body.Bytes(), allowedMarker) {
				t.Errorf("answer lacks %s, which the load steps count as OK", allowedMarker)
			}
		})
	}
}

func TestWriteLatencyPlot(t *testing.T) {
	var steps []LoadStep
	for _, target := range []string{"irsa-webhook", "floor"} {
		for _, rate := range []int{200, 1000, 0} {
			steps = append(steps, LoadStep{Target: target, KeepAlive: true, Rate: rate, OK: 10, Throughput: 1500,
				P50: time.Millisecond, P99: 3 * time.Millisecond})
		}
	}
	var buf bytes.Buffer
	if err := WriteLatencyPlot(&buf, steps); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("plot is not well-formed XML: %v", err)
			}
			break
		}
	}
	for _, want := range []string{"<svg", "irsa-webhook p99, keep-alive", "floor p50, keep-alive"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

// TestMerge: rounds combine as one longer step.
func TestMerge(t *testing.T) {
	a := LoadStep{Target: "t", Rate: 100, Duration: time.Second, Rounds: 1, Requests: 3, OK: 3, CPUSeconds: 0.5,
		latencies: ms(1, 2, 3), elapsed: time.Second}
	b := LoadStep{Target: "t", Rate: 100, Duration: time.Second, Rounds: 1, Requests: 4, OK: 3, Errors: 1, CPUSeconds: 0.25,
		FirstError: "boom", latencies: ms(4, 5, 100), elapsed: 2 * time.Second}
	got := Merge([]LoadStep{a, b})
	want := LoadStep{Target: "t", Rate: 100, Duration: 2 * time.Second, Rounds: 2, Requests: 7, OK: 6, Errors: 1,
		CPUSeconds: 0.75, FirstError: "boom", Throughput: 2, P50: 3 * time.Millisecond, P99: 100 * time.Millisecond,
		P999: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(LoadStep{})); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if len(got.latencies) != 6 {
		t.Errorf("merged %d latencies, want 6", len(got.latencies))
	}
}

// annotatedServiceAccount answers every lookup with a ServiceAccount that
// names a role, as the bench's does.
type annotatedServiceAccount struct{}

func (annotatedServiceAccount) Get(context.Context, string, string) (metacache.Entry, error) {
	return metacache.Entry{Found: true, Annotations: map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/bench"}}, nil
}

// TestAllowedIsEarlyInAnswers: the load steps keep only the first
// answerPrefix bytes of an answer and look for allowedMarker there, so it
// must be there in both servers' answers to the bench's review, the
// webhook's with its patch included.
func TestAllowedIsEarlyInAnswers(t *testing.T) {
	body, err := ReviewBody(TypicalPod("bench", "app"))
	if err != nil {
		t.Fatal(err)
	}
	irsa := &webhook.Handler{Defaults: webhook.NewConfig().Defaults(), ServiceAccounts: annotatedServiceAccount{}}
	for name, h := range map[string]http.Handler{"floor": FloorHandler(nil), "irsa-webhook": irsa} {
		r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		answer := w.Body.Bytes()
		if name == "irsa-webhook" && !bytes.Contains(answer, []byte(`"patch":`)) {
			t.Fatalf("%s: the bench's review was not mutated: %s", name, answer)
		}
		if i := bytes.Index(answer, allowedMarker); i < 0 || i+len(allowedMarker) > answerPrefix {
			t.Errorf("%s: %s is at %d of the answer, not within its first %d bytes: %.300s", name, allowedMarker, i, answerPrefix, answer)
		}
	}
}

func TestSeriesValue(t *testing.T) {
	for _, tc := range []struct {
		line string
		want float64
		ok   bool
	}{
		{`apiserver_admission_step_admission_duration_seconds_sum{operation="CREATE",rejected="false",type="admit"} 1.5`, 1.5, true},
		{`apiserver_admission_step_admission_duration_seconds_sum{operation="CREATE",rejected="false",type="validate"} 1.5`, 0, false},
		{`apiserver_admission_step_admission_duration_seconds_count{operation="CREATE",rejected="false",type="admit"} 7`, 0, false},
		{`apiserver_admission_step_admission_duration_seconds_sum{operation="UPDATE",rejected="false",type="admit"} 2`, 0, false},
		{`# HELP apiserver_admission_step_admission_duration_seconds_sum x`, 0, false},
	} {
		got, ok := seriesValue(tc.line, admitStepSeries, "_sum")
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %v %t, want %v %t", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestMutatingFloorHandler: the mutating floor learns irsa-webhook's patch
// from the first review only, answers every review with it, the generated
// token volume's name replaced by each review's, and refuses a review the
// learned patch does not fit.
func TestMutatingFloorHandler(t *testing.T) {
	withVolume := func(name string) []byte {
		pod := TypicalPod("bench", "app")
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name})
		body, err := ReviewBody(pod)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	// The patch a whole-spec webhook would give: it names the volume.
	learned := `[{"op":"add","path":"/spec/volumes/3","value":{"name":"kube-api-access-aaaaa"}}]`
	var asked atomic.Int64
	irsa := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			t.Errorf("learn request: %v", err)
		}
		_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{Response: &admissionv1.AdmissionResponse{
			UID: review.Request.UID, Allowed: true, Patch: []byte(learned),
		}})
	}))
	defer irsa.Close()
	var calls atomic.Int64
	h := MutatingFloorHandler(irsa.URL, irsa.Client(), &calls)
	answer := func(body []byte) (int, *admissionv1.AdmissionResponse) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, MutatingFloorPath, bytes.NewReader(body)))
		var got admissionv1.AdmissionReview
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
		}
		return w.Code, got.Response
	}
	for _, tc := range []struct {
		name      string
		body      []byte
		wantCode  int
		wantPatch string
	}{
		{"first review, learned from", withVolume("kube-api-access-aaaaa"), http.StatusOK, learned},
		{"another Pod's volume", withVolume("kube-api-access-b7x2q"), http.StatusOK, strings.ReplaceAll(learned, "aaaaa", "b7x2q")},
		{"no generated volume", withVolume("data"), http.StatusInternalServerError, ""},
		{"not a review", []byte("{"), http.StatusBadRequest, ""},
	} {
		code, resp := answer(tc.body)
		if code != tc.wantCode {
			t.Fatalf("%s: code %d, want %d", tc.name, code, tc.wantCode)
		}
		if tc.wantCode != http.StatusOK {
			continue
		}
		if !resp.Allowed || string(resp.Patch) != tc.wantPatch || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Errorf("%s: answer %+v, want allowed with patch %s", tc.name, resp, tc.wantPatch)
		}
	}
	if asked.Load() != 1 || calls.Load() != 2 {
		t.Errorf("irsa-webhook asked %d times (want 1), answers counted %d (want 2)", asked.Load(), calls.Load())
	}
}

// TestRunStepSettlesUncounted: a keep-alive step's settling load reaches
// the server on the connections the step then measures, and is not
// counted; a step without keep-alive does not settle.
func TestRunStepSettlesUncounted(t *testing.T) {
	body, err := ReviewBody(TypicalPod("bench", "app"))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(FloorHandler(&calls))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	target := LoadTarget{Name: "floor", URL: srv.URL + FloorPath, PID: os.Getpid()}
	o := LoadOptions{Body: body, RootCAs: roots, Duration: time.Second, MaxConnections: 1, Timeout: 10 * time.Second, Settle: 500 * time.Millisecond}

	st, err := RunStep(context.Background(), target, o, 100, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections opened, want the one the settling opened, reused: the bound is 1", n)
	}
	settled := calls.Load() - int64(st.Requests)
	if st.Requests != 100 || st.OK != 100 || settled != 50 {
		t.Fatalf("%d requests (%d OK) counted, %d more answered; want 100 counted and the settling 50 not", st.Requests, st.OK, settled)
	}

	calls.Store(0)
	st, err = RunStep(context.Background(), target, o, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 100 || calls.Load() != 100 {
		t.Fatalf("without keep-alive: %d requests counted, %d answered; want 100 and no settling", st.Requests, calls.Load())
	}
}
