package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/e2e/bench"
	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// The namespace and ServiceAccount the load and Pod tests admit Pods for.
const (
	loadNamespace  = "bench"
	serviceAccount = "app"
	roleARN        = "arn:aws:iam::111122223333:role/bench"
)

// results is everything the report shows.
type results struct {
	Machine     machine
	Started     time.Time
	Finished    time.Time
	Micro       *micro
	Load        []bench.LoadStep
	PodsWith    *bench.PodCreates
	PodsWithout *bench.PodCreates
	Scale       []bench.ScalePoint
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg *Config) (err error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	r := &results{Started: time.Now().UTC(), Machine: describeMachine(ctx, root, cfg.Note)}
	if cfg.has("micro") {
		if r.Micro, err = runMicro(ctx, root, cfg); err != nil {
			return err
		}
	}
	if cfg.has("load") || cfg.has("pods") || cfg.has("scale") {
		if err := runStack(ctx, cfg, r); err != nil {
			return err
		}
	}
	r.Finished = time.Now().UTC()
	r.Machine.LoadAfter = loadAverage()
	return writeReport(root, cfg, r)
}

// runStack starts the real parts once and runs the load, Pod and scale
// parts against them, in that order (the scale part fills the API server).
func runStack(ctx context.Context, cfg *Config, r *results) (err error) {
	dir, err := os.MkdirTemp("", "irsa-webhook-bench-")
	if err != nil {
		return err
	}
	buildCtx, cancel := context.WithTimeout(ctx, 45*time.Minute)
	defer cancel()
	bins, err := harness.Build(buildCtx, harness.BuildOptions{OutDir: filepath.Join(dir, "bin"), Progress: os.Stderr})
	if err != nil {
		return err
	}
	s, err := harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins, Progress: os.Stderr, WebhookArgs: cfg.WebhookArgs})
	defer func() {
		if s == nil {
			return
		}
		if stopErr := s.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		if err != nil {
			s.DumpLogs(os.Stderr, 20)
			logf("logs kept in %s", s.LogDir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	if err != nil {
		return err
	}
	// MinIO and the discovery server play no part in admission; stopped,
	// they take no CPU from what is measured.
	if err := errors.Join(s.MinIO.Stop(), s.Discovery.Stop()); err != nil {
		return err
	}
	client, err := fastClient(s)
	if err != nil {
		return err
	}
	annotations := map[string]string{identity.Keys{Prefix: identity.DefaultPrefix}.Key(identity.RoleARN): roleARN}

	if cfg.has("load") {
		if r.Load, err = runLoad(ctx, cfg, s, client, annotations); err != nil {
			return err
		}
	}
	if cfg.has("pods") {
		if r.PodsWith, r.PodsWithout, err = runPods(ctx, cfg, s, client, annotations); err != nil {
			return err
		}
	}
	if cfg.has("scale") {
		if r.Scale, err = runScale(ctx, cfg, s, client, annotations); err != nil {
			return err
		}
	}
	return nil
}

// fastClient is an admin client without client-side rate limiting, so the
// API server is what bounds the creates.
func fastClient(s *harness.Stack) (kubernetes.Interface, error) {
	rc := *s.APIServer.Admin
	rc.QPS, rc.Burst = -1, 0
	rc.UserAgent = "irsa-webhook-bench"
	c, err := kubernetes.NewForConfig(&rc)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return c, nil
}

func runLoad(ctx context.Context, cfg *Config, s *harness.Stack, c kubernetes.Interface, annotations map[string]string) ([]bench.LoadStep, error) {
	if err := harness.EnsureNamespace(ctx, c, loadNamespace); err != nil {
		return nil, err
	}
	if err := harness.CreateServiceAccount(ctx, c, loadNamespace, serviceAccount, annotations); err != nil {
		return nil, err
	}
	body, err := bench.ReviewBody(bench.TypicalPod(loadNamespace, serviceAccount))
	if err != nil {
		return nil, err
	}
	floor, err := startFloor(ctx, s)
	if err != nil {
		return nil, err
	}
	defer floor.Stop() //nolint:errcheck // best effort at the end of the run
	targets := []bench.LoadTarget{
		{Name: "irsa-webhook", URL: s.Webhook.URL, PID: s.Webhook.Process.PID()},
		{Name: "floor", URL: floor.url, PID: floor.PID()},
	}
	o := bench.LoadOptions{Body: body, RootCAs: s.PKI.CertPool(), Duration: cfg.Duration, MaxWorkers: uint64(cfg.MaxWorkers), MaxConnections: cfg.MaxConns, Timeout: 10 * time.Second}

	// Both servers get a warm-up the report leaves out (connections, the
	// webhook's first lookup).
	warm := o
	warm.Duration = 2 * time.Second
	for _, t := range targets {
		st, err := bench.RunStep(ctx, t, warm, 200, true)
		if err != nil {
			return nil, err
		}
		if st.OK == 0 {
			return nil, fmt.Errorf("warm-up of %s: no request was admitted: %s", t.Name, st.FirstError)
		}
	}

	// Each step runs in rounds, the two servers taking turns and swapping
	// who goes first, so that whatever else the shared machine does in
	// those minutes falls on both alike; a step's figures are over all its
	// rounds.
	var steps []bench.LoadStep
	for _, keepAlive := range []bool{true, false} {
		for _, rate := range append(append([]int{}, cfg.Rates...), 0) {
			rounds := make([][]bench.LoadStep, len(targets))
			for r := range cfg.Rounds {
				for i := range targets {
					if r%2 == 1 {
						i = len(targets) - 1 - i
					}
					st, err := bench.RunStep(ctx, targets[i], o, rate, keepAlive)
					if err != nil {
						return nil, err
					}
					rounds[i] = append(rounds[i], st)
				}
			}
			for i, t := range targets {
				st := bench.Merge(rounds[i])
				logf("load %-12s keep-alive=%-5t rate=%-5s rounds=%d ok=%d errors=%d throughput=%.0f/s p50=%s p99=%s p99.9=%s cpu/1000=%.2fs",
					t.Name, keepAlive, rateName(rate), st.Rounds, st.OK, st.Errors, st.Throughput, st.P50, st.P99, st.P999, st.CPUPer1000())
				steps = append(steps, st)
			}
		}
	}
	return steps, nil
}

type floorProcess struct {
	*harness.Process
	url string
}

// startFloor runs this binary's floor subcommand as its own process, with
// the webhook's serving certificate, and waits until it answers.
func startFloor(ctx context.Context, s *harness.Stack) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the floor: %w", err)
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	f := &floorProcess{
		Process: &harness.Process{
			Name:    "floor",
			Path:    self,
			Args:    []string{"floor", "--addr", addr, "--cert-dir", s.WebhookCertDir},
			LogPath: filepath.Join(s.LogDir, "floor.log"),
		},
		url: "https://" + addr + "/mutate",
	}
	if err := f.Start(); err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI.CertPool()}}}
	err = harness.WaitFor(ctx, 30*time.Second, "the floor webhook", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		_ = f.Stop()
		return nil, fmt.Errorf("%w\n%s", err, f.LogTail(20))
	}
	return f, nil
}

func runPods(ctx context.Context, cfg *Config, s *harness.Stack, c kubernetes.Interface, annotations map[string]string) (*bench.PodCreates, *bench.PodCreates, error) {
	for _, ns := range []string{"pods-with", "pods-without"} {
		if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
			return nil, nil, err
		}
		if err := harness.CreateServiceAccount(ctx, c, ns, serviceAccount, annotations); err != nil {
			return nil, nil, err
		}
	}
	if err := bench.WaitWebhookCalled(ctx, c, "pods-with", serviceAccount, true); err != nil {
		return nil, nil, err
	}
	with, err := bench.CreatePods(ctx, c, "pods-with", serviceAccount, cfg.Pods, true)
	if err != nil {
		return nil, nil, err
	}
	logf("pods with webhook: p50=%s p99=%s injected=%d/%d", with.P50, with.P99, with.Injected, with.Count)
	if err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, harness.WebhookConfigurationName, metav1.DeleteOptions{}); err != nil {
		return nil, nil, fmt.Errorf("unregister webhook: %w", err)
	}
	if err := bench.WaitWebhookCalled(ctx, c, "pods-without", serviceAccount, false); err != nil {
		return nil, nil, err
	}
	without, err := bench.CreatePods(ctx, c, "pods-without", serviceAccount, cfg.Pods, false)
	if err != nil {
		return nil, nil, err
	}
	logf("pods without webhook: p50=%s p99=%s injected=%d/%d", without.P50, without.P99, without.Injected, without.Count)
	if err := harness.RegisterWebhook(ctx, c, s.Webhook.URL, s.PKI.CAPEM); err != nil {
		return nil, nil, err
	}
	if with.Injected != with.Count || without.Injected != 0 {
		return nil, nil, fmt.Errorf("pods injected: %d of %d with the webhook, %d without; the runs did not measure what they claim", with.Injected, with.Count, without.Injected)
	}
	return &with, &without, nil
}

func runScale(ctx context.Context, cfg *Config, s *harness.Stack, c kubernetes.Interface, annotations map[string]string) ([]bench.ScalePoint, error) {
	// The baseline: only the few ServiceAccounts the other parts made.
	base, err := bench.MeasureSync(ctx, s, 0)
	if err != nil {
		return nil, err
	}
	points := []bench.ScalePoint{base}
	logf("scale baseline: ready in %s, cached=%.0f rss=%.1fMiB heap=%.1fMiB", base.TimeToReady, base.Cached, base.RSS/(1<<20), base.HeapInuse/(1<<20))
	have := 0
	for _, n := range cfg.SACounts {
		start := time.Now()
		createCtx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		err := bench.CreateServiceAccounts(createCtx, c, have, n, cfg.CreateWorkers, annotations)
		cancel()
		if err != nil {
			return nil, err
		}
		created := time.Since(start)
		logf("scale: %d service accounts created in %s", n-have, created.Round(time.Millisecond))
		have = n
		p, err := bench.MeasureSync(ctx, s, n)
		if err != nil {
			return nil, err
		}
		p.ServiceAccounts, p.CreateTime = n, created
		logf("scale %d: ready in %s, cached=%.0f rss=%.1fMiB heap=%.1fMiB apiserver cpu=%.2fs", n, p.TimeToReady, p.Cached, p.RSS/(1<<20), p.HeapInuse/(1<<20), p.APIServerCPU)
		points = append(points, p)
	}
	return points, nil
}

// goCommand runs the go tool in dir and returns its standard output.
func goCommand(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %v: %w\n%s%s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func rateName(rate int) string {
	if rate == 0 {
		return "max"
	}
	return itoa(rate)
}
