package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is what a soak run found.
type result struct {
	Config   string    `json:"config"`
	Started  time.Time `json:"started"`
	Samples  []sample  `json:"samples"`
	Rotation string    `json:"rotation"`

	Requests    int      `json:"requests"`
	Errors      int      `json:"errors"`
	NotInjected int      `json:"notInjected"`
	FirstErrors []string `json:"firstErrors,omitempty"`
	ChurnRounds int      `json:"churnRounds"`
	ChurnFailed int      `json:"churnFailed"`
	ChurnErrors []string `json:"churnErrors,omitempty"`

	P50, P99                 time.Duration `json:"-"`
	P99Early, P99Late        time.Duration `json:"-"`
	RSSStart, RSSEnd, RSSMax float64       `json:"-"`
	GorStart, GorEnd, GorMax float64       `json:"-"`
	Summary                  summaryJSON   `json:"summary"`
	mu                       sync.Mutex
}

type summaryJSON struct {
	P50Millis       float64 `json:"p50Millis"`
	P99Millis       float64 `json:"p99Millis"`
	P99EarlyMillis  float64 `json:"p99FirstFifthMillis"`
	P99LateMillis   float64 `json:"p99LastFifthMillis"`
	RSSStartMiB     float64 `json:"rssStartMiB"`
	RSSEndMiB       float64 `json:"rssEndMiB"`
	RSSMaxMiB       float64 `json:"rssMaxMiB"`
	GoroutinesStart float64 `json:"goroutinesStart"`
	GoroutinesEnd   float64 `json:"goroutinesEnd"`
	GoroutinesMax   float64 `json:"goroutinesMax"`
}

func (c config) String() string {
	return fmt.Sprintf("duration=%s workers=%d sample=%s churn=%s rotate-at=%s", c.duration, c.workers, c.sample, c.churn, c.rotateAt)
}

func (r *result) churned(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ChurnRounds++
	if err != nil {
		r.ChurnFailed++
		if len(r.ChurnErrors) < 5 {
			r.ChurnErrors = append(r.ChurnErrors, err.Error())
		}
	}
}

// summarize folds the samples and the recorder's totals into the result.
// Drift compares the p99 of the first and the last fifth of the samples.
func (r *result) summarize(rec *recorder, lastRequests, lastErrors int) {
	rec.mu.Lock()
	all := slices.Clone(rec.all)
	r.FirstErrors = rec.firstErrors
	rec.mu.Unlock()
	for _, s := range r.Samples {
		r.Requests += s.Requests
		r.Errors += s.Errors
	}
	r.Requests += lastRequests
	r.Errors += lastErrors
	slices.Sort(all)
	r.P50, r.P99 = percentile(all, 0.5), percentile(all, 0.99)
	if n := len(r.Samples); n > 0 {
		fifth := max(n/5, 1)
		r.P99Early, r.P99Late = medianP99(r.Samples[:fifth]), medianP99(r.Samples[n-fifth:])
		r.RSSStart, r.RSSEnd = r.Samples[0].RSSBytes, r.Samples[n-1].RSSBytes
		r.GorStart, r.GorEnd = r.Samples[0].Goroutines, r.Samples[n-1].Goroutines
		for _, s := range r.Samples {
			r.RSSMax, r.GorMax = max(r.RSSMax, s.RSSBytes), max(r.GorMax, s.Goroutines)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	mib := func(b float64) float64 { return b / (1 << 20) }
	r.Summary = summaryJSON{
		P50Millis: ms(r.P50), P99Millis: ms(r.P99), P99EarlyMillis: ms(r.P99Early), P99LateMillis: ms(r.P99Late),
		RSSStartMiB: mib(r.RSSStart), RSSEndMiB: mib(r.RSSEnd), RSSMaxMiB: mib(r.RSSMax),
		GoroutinesStart: r.GorStart, GoroutinesEnd: r.GorEnd, GoroutinesMax: r.GorMax,
	}
}

// medianP99 is the median of the samples' p99s: one slow window does not
// decide the drift.
func medianP99(ss []sample) time.Duration {
	ps := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		ps = append(ps, s.P99)
	}
	slices.Sort(ps)
	return ps[len(ps)/2]
}

// verdict fails the run for any failed request, uninjected Pod, failed
// churn round or failed rotation.
func (r *result) verdict() error {
	var errs []error
	if r.Errors > 0 {
		errs = append(errs, fmt.Errorf("%d of %d requests failed or were admitted without credentials: %v", r.Errors, r.Requests, r.FirstErrors))
	}
	if r.ChurnFailed > 0 {
		errs = append(errs, fmt.Errorf("%d of %d churn rounds failed: %v", r.ChurnFailed, r.ChurnRounds, r.ChurnErrors))
	}
	if r.Rotation == "" || strings.HasPrefix(r.Rotation, "failed") {
		errs = append(errs, fmt.Errorf("certificate rotation: %q", r.Rotation))
	}
	return errors.Join(errs...)
}

func (r *result) markdown() string {
	var b strings.Builder
	d := func(x time.Duration) string { return x.Round(10 * time.Microsecond).String() }
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| run | %s, started %s |\n", r.Config, r.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "| Pod creations (dry run, through the API server) | %d |\n", r.Requests)
	fmt.Fprintf(&b, "| failed or admitted without credentials | %d |\n", r.Errors)
	fmt.Fprintf(&b, "| ServiceAccount churn rounds (failed) | %d (%d) |\n", r.ChurnRounds, r.ChurnFailed)
	fmt.Fprintf(&b, "| certificate rotation | %s |\n", r.Rotation)
	fmt.Fprintf(&b, "| latency p50 / p99 (whole run) | %s / %s |\n", d(r.P50), d(r.P99))
	fmt.Fprintf(&b, "| p99 drift (median p99 of the first fifth → last fifth of samples) | %s → %s |\n", d(r.P99Early), d(r.P99Late))
	fmt.Fprintf(&b, "| webhook RSS start / end / max | %.1f / %.1f / %.1f MiB |\n", r.RSSStart/(1<<20), r.RSSEnd/(1<<20), r.RSSMax/(1<<20))
	fmt.Fprintf(&b, "| webhook goroutines start / end / max | %.0f / %.0f / %.0f |\n", r.GorStart, r.GorEnd, r.GorMax)
	return b.String()
}

func (r *result) write(dir string) error {
	f, err := os.Create(filepath.Join(dir, "samples.csv"))
	if err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"seconds", "rss_bytes", "goroutines", "requests", "errors", "p50_ms", "p99_ms"})
	for _, s := range r.Samples {
		_ = w.Write([]string{
			strconv.FormatFloat(s.At.Seconds(), 'f', 1, 64), strconv.FormatFloat(s.RSSBytes, 'f', 0, 64),
			strconv.FormatFloat(s.Goroutines, 'f', 0, 64), strconv.Itoa(s.Requests), strconv.Itoa(s.Errors),
			strconv.FormatFloat(float64(s.P50.Microseconds())/1000, 'f', 2, 64), strconv.FormatFloat(float64(s.P99.Microseconds())/1000, 'f', 2, 64),
		})
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	for name, data := range map[string][]byte{
		"summary.json": js,
		"summary.md":   []byte(r.markdown()),
		"soak.svg":     plot(r.Samples, r.Config),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
