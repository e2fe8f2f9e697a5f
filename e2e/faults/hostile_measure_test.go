package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// What the hostile-network tests measure and how: the server's memory from
// /proc, the latency of well-behaved requests sent meanwhile on fresh
// connections, and its readiness as a kubelet would probe it.

const mib = 1 << 20

// memory reads VmRSS and VmHWM (the peak RSS since the process started) of
// pid, in bytes.
func memory(pid int) (rss, hwm uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return rss, hwm, sc.Err()
}

// openFilesLimit is the soft "Max open files" of pid.
func openFilesLimit(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if f[0] == "unlimited" {
					return math.MaxUint64, nil
				}
				return strconv.ParseUint(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits has no Max open files", pid)
}

// memWatch samples a process's RSS every 50ms. Over is closed once the RSS
// passes abortAt, so that an attack that is winning stops before it takes
// the machine's memory.
type memWatch struct {
	pid      int
	abortAt  uint64
	baseline uint64
	peak     atomic.Uint64
	Over     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

func watchMemory(t *testing.T, pid int, abortAt uint64) *memWatch {
	t.Helper()
	rss, _, err := memory(pid)
	if err != nil {
		t.Fatal(err)
	}
	m := &memWatch{pid: pid, abortAt: abortAt, baseline: rss, Over: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	m.peak.Store(rss)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		over := false
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			rss, _, err := memory(pid)
			if err != nil {
				return // the process is gone; Stop reports it
			}
			if rss > m.peak.Load() {
				m.peak.Store(rss)
			}
			if !over && rss > abortAt {
				over = true
				close(m.Over)
			}
		}
	}()
	return m
}

// Stop ends the sampling and reports the baseline, the highest sampled RSS
// and VmHWM.
func (m *memWatch) Stop(r *attackResult) error {
	close(m.stop)
	<-m.done
	rss, hwm, err := memory(m.pid)
	if err != nil {
		return fmt.Errorf("read memory after the attack: %w", err)
	}
	r.BaselineRSSMiB = toMiB(m.baseline)
	r.PeakRSSMiB = toMiB(max(m.peak.Load(), rss))
	r.HWMMiB = toMiB(hwm)
	select {
	case <-m.Over:
		r.Aborted = true
	default:
	}
	return nil
}

func toMiB(b uint64) float64 { return math.Round(float64(b)/mib*10) / 10 }

// heapWatch samples the Go heap in use (go_memstats_heap_inuse_bytes from
// the process's /metrics) every 250ms, to tell heap from the rest of the
// RSS. Best effort: a scrape that fails or is slow is skipped.
type heapWatch struct {
	peak atomic.Uint64
	stop func()
}

func watchHeap(ctx context.Context, sample func(ctx context.Context) (float64, error)) *heapWatch {
	h := &heapWatch{}
	h.stop = runLoad(ctx, 1, func(ctx context.Context, _, _ int) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if v, err := sample(sctx); err == nil && uint64(v) > h.peak.Load() {
			h.peak.Store(uint64(v))
		}
	})
	return h
}

func (h *heapWatch) Stop(r *attackResult) {
	h.stop()
	r.PeakHeapInuseMiB = toMiB(h.peak.Load())
}

// probeTimeout is the API server's timeout for the webhook
// (timeoutSeconds: 10 in the install), and what a client of the discovery
// server is given.
const probeTimeout = 10 * time.Second

// probes sends well-behaved requests with send, each with probeTimeout,
// from workers goroutines that pause 100ms between requests, and records
// how long each took and whether it failed.
type probes struct {
	mu       sync.Mutex
	lat      []time.Duration
	failures int
	example  string
	stopping atomic.Bool
	wg       sync.WaitGroup
}

func startProbes(workers int, send func(ctx context.Context, seq int) error) *probes {
	p := &probes{}
	for w := range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for seq := w; !p.stopping.Load(); seq += workers {
				ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
				start := time.Now()
				err := send(ctx, seq)
				d := time.Since(start)
				cancel()
				p.mu.Lock()
				p.lat = append(p.lat, d)
				if err != nil {
					p.failures++
					if p.example == "" {
						p.example = err.Error()
					}
				}
				p.mu.Unlock()
				<-time.After(100 * time.Millisecond) // a steady, light pace
			}
		}()
	}
	return p
}

// Stop lets the probes in flight finish (each within probeTimeout), so
// that a request the server holds counts, and records the latencies.
func (p *probes) Stop(r *attackResult) {
	p.stopping.Store(true)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	lat := slices.Clone(p.lat)
	slices.Sort(lat)
	r.Probes, r.ProbeFailures, r.ProbeFailure = len(lat), p.failures, p.example
	if len(lat) == 0 {
		return
	}
	q := func(f float64) float64 {
		i := int(math.Ceil(f*float64(len(lat)))) - 1
		return ms(lat[max(i, 0)])
	}
	r.P50Ms, r.P99Ms, r.MaxMs = q(0.50), q(0.99), ms(lat[len(lat)-1])
	for _, d := range lat {
		if d > time.Second {
			r.OverOneSecond++
		}
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// readiness probes url every second with a one-second timeout, as the
// kubelet does with the install's readinessProbe (timeoutSeconds defaults
// to 1), and counts failures and the longest run of them (the kubelet
// takes a Pod out of its Service after failureThreshold: 2).
type readiness struct {
	checks, failures, worst, run atomic.Int64
	stop                         func()
}

func watchReadiness(ctx context.Context, url string) *readiness {
	r := &readiness{}
	client := &http.Client{Timeout: time.Second}
	r.stop = runLoad(ctx, 1, func(ctx context.Context, _, _ int) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		ok := false
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.checks.Add(1)
		if ok {
			r.run.Store(0)
			return
		}
		r.failures.Add(1)
		if n := r.run.Add(1); n > r.worst.Load() {
			r.worst.Store(n)
		}
	})
	return r
}

func (r *readiness) Stop(res *attackResult) {
	r.stop()
	res.ReadyChecks, res.ReadyFailures, res.ReadyWorstRun = int(r.checks.Load()), int(r.failures.Load()), int(r.worst.Load())
}

// attackResult is every number one pattern measured; the report file holds
// one JSON object per line, and cmd/hostilereport turns them into the
// "Hostile network: measured" section of docs/security.md.
type attackResult struct {
	Server  string `json:"server"`
	Pattern string `json:"pattern"`
	Attack  string `json:"attack"`
	// Hold is how long the probes ran with the attack in place.
	HoldSeconds float64 `json:"holdSeconds"`
	// HoldSetting and Scale are the knobs of the run.
	HoldSetting string `json:"holdSetting"`
	Scale       int    `json:"scale"`

	LimitMiB       float64 `json:"limitMiB"`
	BaselineRSSMiB float64 `json:"baselineRSSMiB"`
	PeakRSSMiB     float64 `json:"peakRSSMiB"`
	HWMMiB         float64 `json:"hwmMiB"`
	// PeakHeapInuseMiB is the highest go_memstats_heap_inuse_bytes
	// scraped (0 when none was).
	PeakHeapInuseMiB float64 `json:"peakHeapInuseMiB"`
	// Aborted: the RSS passed the abort bound and the attack was stopped.
	Aborted bool `json:"aborted"`

	Probes        int     `json:"probes"`
	ProbeFailures int     `json:"probeFailures"`
	ProbeFailure  string  `json:"probeFailure,omitempty"`
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	MaxMs         float64 `json:"maxMs"`
	OverOneSecond int     `json:"overOneSecond"`

	ReadyChecks   int `json:"readyChecks"`
	ReadyFailures int `json:"readyFailures"`
	ReadyWorstRun int `json:"readyWorstRun"`

	// Counts are the attack's own: streams and connections opened, answers
	// by status, resets, connections the server closed.
	Counts map[string]int `json:"counts"`
	Passed bool           `json:"passed"`
	When   string         `json:"when"`
}

func (r *attackResult) log(t *testing.T) {
	t.Helper()
	t.Logf("%s/%s (%s, held %.0fs): RSS %.1f MiB before, peak %.1f MiB (VmHWM %.1f; Go heap in use at most %.1f), limit %.0f MiB, aborted %t",
		r.Server, r.Pattern, r.Attack, r.HoldSeconds, r.BaselineRSSMiB, r.PeakRSSMiB, r.HWMMiB, r.PeakHeapInuseMiB, r.LimitMiB, r.Aborted)
	t.Logf("%s/%s: %d well-behaved requests (half on fresh connections), %d failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d over 1s%s",
		r.Server, r.Pattern, r.Probes, r.ProbeFailures, r.P50Ms, r.P99Ms, r.MaxMs, r.OverOneSecond, exampleSuffix(r.ProbeFailure))
	t.Logf("%s/%s: readiness %d checks, %d failed, longest failing run %d; attack counts %v",
		r.Server, r.Pattern, r.ReadyChecks, r.ReadyFailures, r.ReadyWorstRun, r.Counts)
}

func exampleSuffix(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (e.g. %.200s)", s)
}

// check asserts the bounds every pattern must keep: the peak RSS under the
// Deployment's memory limit, and every well-behaved request answered
// within its timeout.
func (r *attackResult) check(t *testing.T) {
	t.Helper()
	if r.Aborted {
		t.Errorf("%s/%s: RSS passed the abort bound; attack stopped early", r.Server, r.Pattern)
	}
	if peak := max(r.PeakRSSMiB, r.HWMMiB); peak >= r.LimitMiB {
		t.Errorf("%s/%s: peak RSS %.1f MiB, want under the Deployment's limit %.0f MiB", r.Server, r.Pattern, peak, r.LimitMiB)
	}
	if r.Probes == 0 {
		t.Errorf("%s/%s: no well-behaved request completed", r.Server, r.Pattern)
	}
	if r.ProbeFailures > 0 {
		t.Errorf("%s/%s: %d of %d well-behaved requests failed or timed out after %s%s",
			r.Server, r.Pattern, r.ProbeFailures, r.Probes, probeTimeout, exampleSuffix(r.ProbeFailure))
	}
}

// reportMu serialises appends to the report file.
var reportMu sync.Mutex

// report appends r to the file named by IRSA_FAULTS_ATTACK_REPORT, if set.
func (r *attackResult) report(t *testing.T) {
	t.Helper()
	path := os.Getenv("IRSA_FAULTS_ATTACK_REPORT")
	if path == "" {
		return
	}
	r.Passed = !t.Failed()
	r.When = time.Now().UTC().Format(time.RFC3339)
	line, err := json.Marshal(r)
	if err != nil {
		t.Error(err)
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Error(err)
	}
}

// deployedContainer is the first container of a Deployment in deploy/base
// (rendered from the chart by make manifests):
// its memory limit is the bound, and its environment (GOMEMLIMIT from
// limits.memory) is what the process runs with.
type deployedContainer struct {
	LimitBytes int64
	Env        []string
}

func readDeployment(t *testing.T, rel, name string) deployedContainer {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if obj.Kind == "Deployment" && obj.Name == name {
			d = obj
			break
		}
	}
	if d.Name == "" {
		t.Fatalf("%s: no Deployment %s", rel, name)
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("%s: no container", rel)
	}
	c := d.Spec.Template.Spec.Containers[0]
	limit := c.Resources.Limits.Memory()
	if limit == nil || limit.IsZero() {
		t.Fatalf("%s: container %s has no memory limit", rel, c.Name)
	}
	out := deployedContainer{LimitBytes: limit.Value()}
	for _, e := range c.Env {
		v, ok := envValue(e, c.Resources)
		if !ok {
			t.Fatalf("%s: env %s: only values and resourceFieldRef limits.memory are understood here", rel, e.Name)
		}
		out.Env = append(out.Env, e.Name+"="+v)
	}
	return out
}

func envValue(e corev1.EnvVar, res corev1.ResourceRequirements) (string, bool) {
	if e.ValueFrom == nil {
		return e.Value, true
	}
	ref := e.ValueFrom.ResourceFieldRef
	if ref == nil || ref.Resource != "limits.memory" || (!ref.Divisor.IsZero() && ref.Divisor.Value() != 1) {
		return "", false
	}
	return strconv.FormatInt(res.Limits.Memory().Value(), 10), true
}
