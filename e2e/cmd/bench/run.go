package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	Machine  machine
	Started  time.Time
	Finished time.Time
	Micro    *micro
	Load     []bench.LoadStep
	Pods     []bench.PodCreates
	// WebhookGOGC is the collector target irsa-webhook ran at in the load
	// part, from its go_gc_gogc_percent metric (0 if unread).
	WebhookGOGC float64
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

	if cfg.has("load") || cfg.has("pods") {
		if err := harness.EnsureNamespace(ctx, client, loadNamespace); err != nil {
			return err
		}
		if err := harness.CreateServiceAccount(ctx, client, loadNamespace, serviceAccount, annotations); err != nil {
			return err
		}
		floor, err := startFloor(ctx, s, cfg.FloorProtocols)
		if err != nil {
			return err
		}
		defer floor.Stop() //nolint:errcheck // best effort at the end of the run
		if cfg.has("load") {
			if v, err := s.Webhook.Metric(ctx, "go_gc_gogc_percent"); err == nil {
				r.WebhookGOGC = v
			}
			if r.Load, err = runLoad(ctx, cfg, s, floor); err != nil {
				return err
			}
		}
		if cfg.has("pods") {
			if r.Pods, err = runPods(ctx, cfg, s, client, floor, annotations); err != nil {
				return err
			}
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

func runLoad(ctx context.Context, cfg *Config, s *harness.Stack, floor *floorProcess) ([]bench.LoadStep, error) {
	body, err := bench.ReviewBody(bench.TypicalPod(loadNamespace, serviceAccount))
	if err != nil {
		return nil, err
	}
	targets := []bench.LoadTarget{{Name: "irsa-webhook", URL: s.Webhook.URL, PID: s.Webhook.Process.PID()}}
	if len(cfg.VariantEnv) > 0 {
		v, err := startVariant(ctx, s, cfg.VariantEnv)
		if err != nil {
			return nil, err
		}
		defer v.Stop() //nolint:errcheck // best effort at the end of the part
		targets = append(targets, bench.LoadTarget{Name: variantName(cfg.VariantEnv), URL: v.url, PID: v.PID()})
	}
	targets = append(targets, bench.LoadTarget{Name: "floor", URL: floor.url, PID: floor.PID()})
	o := bench.LoadOptions{Body: body, RootCAs: s.PKI.CertPool(), Duration: cfg.Duration, MaxWorkers: uint64(cfg.MaxWorkers), MaxConnections: cfg.MaxConns, Timeout: 10 * time.Second, Settle: cfg.Settle}

	// Every server gets a warm-up the report leaves out (connections, the
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

	// Each step runs in rounds, the servers taking turns and the order
	// turning each round, so that whatever else the shared machine does in
	// those minutes falls on all alike; a step's figures are over all its
	// rounds.
	var steps []bench.LoadStep
	for _, keepAlive := range []bool{true, false} {
		for _, rate := range append(append([]int{}, cfg.Rates...), 0) {
			rounds := make([][]bench.LoadStep, len(targets))
			for r := range cfg.Rounds {
				for k := range targets {
					i := (k + r) % len(targets)
					st, err := bench.RunStep(ctx, targets[i], o, rate, keepAlive)
					if err != nil {
						return nil, err
					}
					rounds[i] = append(rounds[i], st)
				}
			}
			for i, t := range targets {
				st := bench.Merge(rounds[i])
				logf("load %-12s keep-alive=%-5t rate=%-5s rounds=%d ok=%d errors=%d throughput=%.0f/s p50=%s p99=%s p99.9=%s cpu/1000=%.2fs rss max=%.1fMiB",
					t.Name, keepAlive, rateName(rate), st.Rounds, st.OK, st.Errors, st.Throughput, st.P50, st.P99, st.P999, st.CPUPer1000(), st.RSSMax/(1<<20))
				steps = append(steps, st)
			}
		}
	}
	return steps, nil
}

// variantName is how the report names irsa-webhook run with env.
func variantName(env []string) string {
	name := "irsa-webhook"
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if k == "GOMEMLIMIT" {
			if b, err := strconv.ParseInt(v, 10, 64); err == nil && b%(1<<20) == 0 {
				v = strconv.FormatInt(b>>20, 10) + "MiB"
			}
		}
		name += " " + k + "=" + v
	}
	return name
}

type variantProcess struct {
	*harness.Process
	url string
}

// startVariant runs a second irsa-webhook serve, with the harness's flags
// on ports of its own and env as its whole environment, and waits until
// it is ready.
func startVariant(ctx context.Context, s *harness.Stack, env []string) (*variantProcess, error) {
	var ports [3]int
	for i := range ports {
		p, err := harness.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	hp := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	var args []string
	for _, a := range s.Webhook.Process.Args {
		switch {
		case strings.HasPrefix(a, "--port="):
			a = "--port=" + strconv.Itoa(ports[0])
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=" + hp(ports[1])
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=" + hp(ports[2])
		}
		args = append(args, a)
	}
	v := &variantProcess{
		Process: &harness.Process{
			Name:    "irsa-webhook-variant",
			Path:    s.Webhook.Process.Path,
			Args:    args,
			Env:     env,
			LogPath: filepath.Join(s.LogDir, "irsa-webhook-variant.log"),
		},
		url: "https://" + hp(ports[0]) + "/mutate",
	}
	if err := v.Start(); err != nil {
		return nil, err
	}
	err := harness.WaitFor(ctx, 60*time.Second, "the irsa-webhook variant's /readyz", func(ctx context.Context) error {
		if !v.Running() {
			return fmt.Errorf("exited:\n%s", v.LogTail(20))
		}
		return getOK(ctx, http.DefaultClient, "http://"+hp(ports[1])+"/readyz")
	})
	if err != nil {
		_ = v.Stop()
		return nil, err
	}
	return v, nil
}

func getOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return nil
}

type floorProcess struct {
	*harness.Process
	url         string // the floor
	mutatingURL string // the mutating floor
	client      *http.Client
	base        string
}

// calls is how many admissions the floor and the mutating floor have
// answered.
func (f *floorProcess) calls(ctx context.Context) (bench.FloorCalls, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+bench.FloorCallsPath, nil)
	if err != nil {
		return bench.FloorCalls{}, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return bench.FloorCalls{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return bench.FloorCalls{}, err
	}
	var c bench.FloorCalls
	if _, err := fmt.Sscan(string(b), &c.Floor, &c.Mutating); err != nil {
		return c, fmt.Errorf("read the floor's calls %q: %w", b, err)
	}
	return c, nil
}

// startFloor runs this binary's floor subcommand as its own process, with
// the webhook's serving certificate and the application protocols
// irsa-webhook serve offers, the mutating floor learning from irsa-webhook,
// and waits until it answers.
func startFloor(ctx context.Context, s *harness.Stack, protocols []string) (*floorProcess, error) {
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
			Name: "floor",
			Path: self,
			Args: []string{"floor", "--addr", addr, "--cert-dir", s.WebhookCertDir, "--protocols", strings.Join(protocols, ","),
				"--learn-from", s.Webhook.URL, "--ca-file", s.PKI.CAFile},
			LogPath: filepath.Join(s.LogDir, "floor.log"),
		},
		url:         "https://" + addr + bench.FloorPath,
		mutatingURL: "https://" + addr + bench.MutatingFloorPath,
		base:        "https://" + addr,
		client:      &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI.CertPool()}}},
	}
	if err := f.Start(); err != nil {
		return nil, err
	}
	err = harness.WaitFor(ctx, 30*time.Second, "the floor webhook", func(ctx context.Context) error {
		return getOK(ctx, f.client, f.base+"/readyz")
	})
	if err != nil {
		_ = f.Stop()
		return nil, fmt.Errorf("%w\n%s", err, f.LogTail(20))
	}
	return f, nil
}

// The Pod part's registrations, each in a namespace of its own: all are
// registered at once, each webhook's configuration narrowed to its
// namespace, so the part changes registration by creating in another
// namespace, and the registrations can take turns every few hundred
// creates without the API server reloading anything.
var podRegistrations = []podMode{
	{bench.PodsNoWebhook, "pods-none", ""},
	{bench.PodsFloor, "pods-floor", "floor.bench.irsa-webhook.io"},
	{bench.PodsMutatingFloor, "pods-mutating-floor", "mutating-floor.bench.irsa-webhook.io"},
	{bench.PodsWebhook, "pods-irsa", harness.WebhookName},
}

// podMode is one registration of the Pod part: where its Pods are created
// and the name of its webhook ("" for none).
type podMode struct{ mode, namespace, webhook string }

// speak makes kube-apiserver speak proto to webhooks. For a URL on a
// loopback address it offers HTTP/2, which both webhooks accept; for a
// webhook behind a Service, as an install registers it, it speaks only
// HTTP/1.1 (k8s.io/apiserver/pkg/util/webhook). DISABLE_HTTP2 in its
// environment makes its clients speak HTTP/1.1 to every server; it is
// restarted to take it up, and waited for.
func speak(ctx context.Context, s *harness.Stack, c kubernetes.Interface, proto string) error {
	p := s.APIServer.Process
	env := slices.DeleteFunc(slices.Clone(p.Env), func(e string) bool { return strings.HasPrefix(e, "DISABLE_HTTP2=") })
	if proto == bench.HTTP1 {
		env = append(env, "DISABLE_HTTP2=true")
	}
	if slices.Equal(env, p.Env) {
		return nil
	}
	p.Env = env
	if err := s.APIServer.Restart(ctx); err != nil {
		return fmt.Errorf("restart kube-apiserver to speak %s to webhooks: %w", proto, err)
	}
	// The bench's client finds its connections closed once, then redials.
	return harness.WaitFor(ctx, 30*time.Second, "kube-apiserver answering the bench after its restart", func(ctx context.Context) error {
		_, err := c.CoreV1().Namespaces().Get(ctx, podRegistrations[0].namespace, metav1.GetOptions{})
		return err
	})
}

// registerPodModes registers the floor, the mutating floor and
// irsa-webhook, each with the harness's configuration (only the URL, the
// webhook's name and one more namespace requirement differ), and waits
// until the API server calls each registration's webhook, and only it, in
// its namespace.
func registerPodModes(ctx context.Context, s *harness.Stack, c kubernetes.Interface, floor *floorProcess) error {
	urls := map[string]string{bench.PodsFloor: floor.url, bench.PodsMutatingFloor: floor.mutatingURL, bench.PodsWebhook: s.Webhook.URL}
	for _, m := range podRegistrations[1:] {
		cfg := harness.WebhookConfiguration(urls[m.mode], s.PKI.CAPEM)
		if m.mode != bench.PodsWebhook {
			cfg.Name = m.webhook
		}
		w := &cfg.Webhooks[0]
		w.Name = m.webhook
		w.NamespaceSelector.MatchExpressions = append(w.NamespaceSelector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{m.namespace},
		})
		if err := harness.ApplyWebhookConfiguration(ctx, c, cfg); err != nil {
			return err
		}
	}
	for _, m := range podRegistrations {
		if err := bench.WaitPodsReach(ctx, c, m.namespace, serviceAccount, m.mode, floor.calls); err != nil {
			return err
		}
	}
	return bench.SameChange(ctx, c, namespaceOf(bench.PodsMutatingFloor), namespaceOf(bench.PodsWebhook), serviceAccount)
}

// namespaceOf is where mode's Pods are created.
func namespaceOf(mode string) string {
	for _, m := range podRegistrations {
		if m.mode == mode {
			return m.namespace
		}
	}
	panic("bench: no registration " + mode)
}

// unregisterPodModes puts back the harness's registration, which the rest
// of the run expects.
func unregisterPodModes(ctx context.Context, s *harness.Stack, c kubernetes.Interface) error {
	for _, m := range podRegistrations {
		if m.mode != bench.PodsFloor && m.mode != bench.PodsMutatingFloor {
			continue
		}
		err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, m.webhook, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("unregister %s: %w", m.webhook, err)
		}
	}
	return harness.RegisterWebhook(ctx, c, s.Webhook.URL, s.PKI.CAPEM)
}

// runPods creates Pods through the API server with no webhook, with the
// floor, the mutating floor and irsa-webhook, over HTTP/1.1 and then over
// HTTP/2, with one creator and with cfg.PodWorkers.
func runPods(ctx context.Context, cfg *Config, s *harness.Stack, c kubernetes.Interface, floor *floorProcess, annotations map[string]string) (_ []bench.PodCreates, err error) {
	for _, m := range podRegistrations {
		if err := harness.EnsureNamespace(ctx, c, m.namespace); err != nil {
			return nil, err
		}
		// Annotated everywhere, so that the mutating floor's review is one
		// irsa-webhook changes when the floor learns from it.
		if err := harness.CreateServiceAccount(ctx, c, m.namespace, serviceAccount, annotations); err != nil {
			return nil, err
		}
	}
	if err := registerPodModes(ctx, s, c, floor); err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := errors.Join(speak(ctx, s, c, bench.HTTP2), unregisterPodModes(ctx, s, c)); stopErr != nil {
			logf("%v", stopErr)
			if err == nil {
				err = stopErr
			}
		}
	}()
	// The webhook's live lookups would put the API server in the path of
	// every admission; the log says how many there were.
	defer func() {
		for _, m := range []string{"irsa_webhook_service_account_live_lookups_total", "irsa_webhook_namespace_live_lookups_total"} {
			if v, err := s.Webhook.Metric(ctx, m); err == nil {
				logf("pods: irsa-webhook %s %.0f", m, v)
			}
		}
	}()
	var out []bench.PodCreates
	for _, proto := range []string{bench.HTTP1, bench.HTTP2} {
		if err := speak(ctx, s, c, proto); err != nil {
			return nil, err
		}
		for _, workers := range []int{1, cfg.PodWorkers} {
			ps, err := podRounds(ctx, cfg, c, proto, workers)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
	}
	return out, nil
}

// podRounds runs one load (a protocol and a number of creators) in rounds
// of cfg.PodRound creates per registration, the registrations taking turns
// in an order that turns each round, so that whatever else the machine
// does in a moment falls on all of them alike. Kube-apiserver's admission
// metrics are read between turns.
func podRounds(ctx context.Context, cfg *Config, c kubernetes.Interface, proto string, workers int) ([]bench.PodCreates, error) {
	// Unmeasured: the API server's connections to each webhook are opened,
	// as they are long before a burst in a running cluster.
	for _, m := range podRegistrations {
		if _, err := bench.CreatePods(ctx, c, m.namespace, serviceAccount, 2*workers, workers, m.mode, proto); err != nil {
			return nil, err
		}
	}
	rounds := make([][]bench.PodCreates, len(podRegistrations))
	left := cfg.Pods
	before, err := bench.ReadAdmissionTimes(ctx, c)
	if err != nil {
		return nil, err
	}
	for r := 0; left > 0; r++ {
		n := min(cfg.PodRound, left)
		left -= n
		for k := range podRegistrations {
			i := (k + r) % len(podRegistrations)
			m := podRegistrations[i]
			p, err := bench.CreatePods(ctx, c, m.namespace, serviceAccount, n, workers, m.mode, proto)
			if err != nil {
				return nil, err
			}
			after, err := bench.ReadAdmissionTimes(ctx, c)
			if err != nil {
				return nil, err
			}
			p.API, before = after.Sub(before), after
			rounds[i] = append(rounds[i], p)
		}
	}
	var out []bench.PodCreates
	for i, m := range podRegistrations {
		p := bench.MergePods(rounds[i])
		logf("pods %-14s %-8s creators=%-3d p50=%s p99=%s throughput=%.0f/s injected=%d/%d api: webhook call %s (%.0f), mutating admission %s (%.0f)", m.mode, proto, workers, p.P50, p.P99, p.Throughput, p.Injected, p.Count, p.API.MeanCall(), p.API.Calls, p.API.MeanStep(), p.API.Steps)
		if err := injectedAsClaimed(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if cfg.PodsPaired > 0 {
		paired, err := podsPaired(ctx, cfg, c, proto, workers)
		if err != nil {
			return nil, err
		}
		out = append(out, paired...)
	}
	// The created Pods go, so that every load starts from the same store.
	for _, m := range podRegistrations {
		if err := c.CoreV1().Pods(m.namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			return nil, fmt.Errorf("delete the pods of %s: %w", m.namespace, err)
		}
	}
	return out, nil
}

// podsPaired runs one load again with the registrations' creates
// interleaved one by one (bench.CreatePodsPaired), cfg.PodsPaired each, in two
// halves, and checks what each registration injected.
func podsPaired(ctx context.Context, cfg *Config, c kubernetes.Interface, proto string, workers int) ([]bench.PodCreates, error) {
	targets := make([]bench.PodTarget, len(podRegistrations))
	for i, m := range podRegistrations {
		targets[i] = bench.PodTarget{Namespace: m.namespace, Mode: m.mode}
	}
	var halves [2][]bench.PodCreates
	for h := range halves {
		n := cfg.PodsPaired / 2
		if h == 1 {
			n = cfg.PodsPaired - n
		}
		var err error
		if halves[h], err = bench.CreatePodsPaired(ctx, c, targets, serviceAccount, max(n, 1), workers, proto); err != nil {
			return nil, err
		}
	}
	out := make([]bench.PodCreates, len(targets))
	for i, m := range podRegistrations {
		p := bench.MergePods([]bench.PodCreates{halves[0][i], halves[1][i]})
		p.HalfP99 = [2]time.Duration{halves[0][i].P99, halves[1][i].P99}
		logf("pods paired %-14s %-8s creators=%-3d p50=%s p99=%s (halves %s, %s) injected=%d/%d", m.mode, proto, workers, p.P50, p.P99, p.HalfP99[0], p.HalfP99[1], p.Injected, p.Count)
		if err := injectedAsClaimed(p); err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// injectedAsClaimed fails unless every Pod p created through irsa-webhook
// or the mutating floor came back injected, and none other did.
func injectedAsClaimed(p bench.PodCreates) error {
	want := 0
	if p.Mode == bench.PodsWebhook || p.Mode == bench.PodsMutatingFloor {
		want = p.Count
	}
	if p.Injected != want {
		how := "in turns"
		if p.Paired {
			how = "paired"
		}
		return fmt.Errorf("pods %s %s %s: %d of %d injected, want %d; the run did not measure what it claims", p.Mode, p.Proto, how, p.Injected, p.Count, want)
	}
	return nil
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
