package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// AdmissionTimes is what kube-apiserver's own metrics have summed of its
// admission of Pod creates so far: its calls of the mutating webhook, and
// the whole mutating admission step (the call, applying the answer's
// patch, the built-in admission plugins, and all of them again when a
// webhook changed the object).
type AdmissionTimes struct {
	CallSeconds, Calls float64
	StepSeconds, Steps float64
}

// Admission metric series summed by ReadAdmissionTimes: the name and the
// labels a line must carry.
var (
	webhookCallSeries = []string{"apiserver_admission_webhook_admission_duration_seconds", `operation="CREATE"`, `type="admit"`, `rejected="false"`}
	admitStepSeries   = []string{"apiserver_admission_step_admission_duration_seconds", `operation="CREATE"`, `type="admit"`, `rejected="false"`}
)

// ReadAdmissionTimes reads kube-apiserver's /metrics.
func ReadAdmissionTimes(ctx context.Context, c kubernetes.Interface) (AdmissionTimes, error) {
	body, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return AdmissionTimes{}, fmt.Errorf("read kube-apiserver metrics: %w", err)
	}
	var a AdmissionTimes
	for _, line := range strings.Split(string(body), "\n") {
		for _, m := range []struct {
			series     []string
			sum, count *float64
		}{
			{webhookCallSeries, &a.CallSeconds, &a.Calls},
			{admitStepSeries, &a.StepSeconds, &a.Steps},
		} {
			if v, ok := seriesValue(line, m.series, "_sum"); ok {
				*m.sum += v
			}
			if v, ok := seriesValue(line, m.series, "_count"); ok {
				*m.count += v
			}
		}
	}
	return a, nil
}

// seriesValue is the value on line if it is a sample of series' name plus
// suffix with all of series' labels.
func seriesValue(line string, series []string, suffix string) (float64, bool) {
	rest, ok := strings.CutPrefix(line, series[0]+suffix+"{")
	if !ok {
		return 0, false
	}
	labels, value, ok := strings.Cut(rest, "} ")
	if !ok {
		return 0, false
	}
	for _, l := range series[1:] {
		if !strings.Contains(labels, l) {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	return v, err == nil
}

// Sub is what a added over b.
func (a AdmissionTimes) Sub(b AdmissionTimes) AdmissionTimes {
	return AdmissionTimes{a.CallSeconds - b.CallSeconds, a.Calls - b.Calls, a.StepSeconds - b.StepSeconds, a.Steps - b.Steps}
}

// Add is a and b summed.
func (a AdmissionTimes) Add(b AdmissionTimes) AdmissionTimes {
	return AdmissionTimes{a.CallSeconds + b.CallSeconds, a.Calls + b.Calls, a.StepSeconds + b.StepSeconds, a.Steps + b.Steps}
}

// MeanCall is the mean webhook call; 0 when there was none.
func (a AdmissionTimes) MeanCall() time.Duration { return mean(a.CallSeconds, a.Calls) }

// MeanStep is the mean mutating admission step.
func (a AdmissionTimes) MeanStep() time.Duration { return mean(a.StepSeconds, a.Steps) }

func mean(sum, n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(sum / n * float64(time.Second))
}
