package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsCountEveryAnswer: every review ServeHTTP answers is counted
// once, under its outcome, in both the request counter and the latency
// histogram, unreadable reviews included.
func TestMetricsCountEveryAnswer(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}},
		Metrics:         NewMetrics(reg),
	}
	update := bytes.Replace(reviewBody(t, "u2", []byte(plainPod)), []byte(`"operation":"CREATE"`), []byte(`"operation":"UPDATE"`), 1)
	for _, body := range [][]byte{
		reviewBody(t, "u1", []byte(plainPod)),             // mutated
		reviewBody(t, "u3", []byte(plainPod)),             // mutated
		reviewBody(t, "u4", typicalPod(optOutAnnotation)), // skipped
		update, // ignored
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), // error: no request
		[]byte(`{`), // error: not JSON
	} {
		r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	want := map[outcome]int{outcomeMutated: 2, outcomeSkipped: 1, outcomeIgnored: 1, outcomeError: 2}
	for o, n := range want {
		if got := testutil.ToFloat64(h.Metrics.requests.WithLabelValues(string(o))); got != float64(n) {
			t.Errorf("requests{outcome=%q} = %v, want %d", o, got, n)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	observed := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "irsa_webhook_admission_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			observed[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	for o, n := range want {
		if observed[string(o)] != uint64(n) {
			t.Errorf("duration{outcome=%q} has %d samples, want %d", o, observed[string(o)], n)
		}
	}
}
