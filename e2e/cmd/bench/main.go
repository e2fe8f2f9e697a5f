// Command bench is what `make bench` runs: handler micro-benchmarks
// summarised with benchstat, a load test over TLS of `irsa-webhook serve`
// against a floor webhook, Pod creation through a real kube-apiserver with
// and without the webhook, and the ServiceAccount cache at scale. It writes
// docs/benchmarks.md and the latency plot next to it.
//
// Every part is bounded in time and count and uses 127.0.0.1 only; every
// process it starts is stopped on exit, also on Ctrl-C.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/e2e/bench"
)

const usage = `Usage: bench [flags]
       bench floor --addr 127.0.0.1:PORT --cert-dir DIR [--learn-from URL --ca-file FILE]

Measure the admission path and write docs/benchmarks.md (run from inside the
checkout; make bench passes the knobs).

Examples:
  # Everything, as make bench runs it:
  go run ./cmd/bench --benchstat ~/.cache/irsa-webhook/bin/benchstat

  # A quick look: short load steps, small cache sizes, no micro-benchmarks:
  go run ./cmd/bench --parts load,pods,scale --duration 3s --sa-counts 1000 --pods 100

  # The floor webhook alone (what the load test starts as a process):
  go run ./cmd/bench floor --addr 127.0.0.1:8443 --cert-dir ./certs

  # With the mutating floor too, which answers every review with the patch
  # irsa-webhook (here on :9443) gave the first:
  go run ./cmd/bench floor --addr 127.0.0.1:8443 --cert-dir ./certs \
    --learn-from https://127.0.0.1:9443/mutate --ca-file ./certs/ca.crt

Flags:
`

// Config is the command's configuration.
type Config struct {
	Parts         []string
	Out           string
	Plot          string
	RawDir        string
	Benchstat     string
	BenchCount    int
	BenchTime     string
	Duration      time.Duration
	Settle        time.Duration
	Rounds        int
	Rates         []int
	MaxWorkers    int
	MaxConns      int
	SACounts      []int
	CreateWorkers int
	Pods          int
	PodsPaired    int
	PodRound      int
	PodWorkers    int
	Note          string
	// VariantEnv is the whole environment of a second irsa-webhook serve
	// the load part measures beside the first (none when empty).
	VariantEnv []string
	// FloorProtocols are the application protocols the floor offers.
	FloorProtocols []string
	// WebhookArgs are appended to irsa-webhook serve's flags.
	WebhookArgs []string
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		Parts:         []string{"micro", "load", "pods", "scale"},
		Out:           "docs/benchmarks.md",
		Plot:          "docs/benchmarks-latency.svg",
		RawDir:        "docs/bench",
		BenchCount:    6,
		BenchTime:     "1s",
		Duration:      5 * time.Second,
		Settle:        time.Second,
		Rounds:        4,
		Rates:         []int{200, 500, 1000, 2000},
		MaxWorkers:    32,
		MaxConns:      64,
		SACounts:      []int{1000, 10000, 100000},
		CreateWorkers: 32,
		Pods:          3000,
		PodsPaired:    6000,
		PodRound:      200,
		PodWorkers:    16,
		// serve's GOGC before its default became 200, and GOMEMLIMIT as the
		// install sets it from the container's memory limit (256Mi).
		VariantEnv:     []string{"GOGC=400", "GOMEMLIMIT=268435456"},
		FloorProtocols: []string{"h2", "http/1.1"},
	}
}

// AddFlags binds the flags to c's fields.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.Parts, "parts", c.Parts, "parts to run: micro, load, pods, scale")
	fs.StringVar(&c.Out, "out", c.Out, "report to write, relative to the checkout")
	fs.StringVar(&c.Plot, "plot", c.Plot, "latency plot (SVG) to write, relative to the checkout")
	fs.StringVar(&c.RawDir, "raw-dir", c.RawDir, "directory for raw benchmark output, relative to the checkout")
	fs.StringVar(&c.Benchstat, "benchstat", c.Benchstat, "benchstat binary (golang.org/x/perf/cmd/benchstat); required for the micro part")
	fs.IntVar(&c.BenchCount, "bench-count", c.BenchCount, "go test -count for the micro-benchmarks")
	fs.StringVar(&c.BenchTime, "bench-time", c.BenchTime, "go test -benchtime for the micro-benchmarks")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each round of a load step")
	fs.DurationVar(&c.Settle, "settle", c.Settle, "load run before each keep-alive round on the same connections, not measured, so that the round measures connections in use rather than their opening")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds of each load step, the servers taking turns")
	fs.IntSliceVar(&c.Rates, "rates", c.Rates, "fixed offered rates (requests/s) of the load steps; a saturation step follows")
	fs.IntVar(&c.MaxWorkers, "max-workers", c.MaxWorkers, "concurrent requests of the saturation step")
	fs.IntVar(&c.MaxConns, "max-connections", c.MaxConns, "connections of a keep-alive step, as a client's pool bounds them (0: no bound)")
	fs.IntSliceVar(&c.SACounts, "sa-counts", c.SACounts, "ServiceAccount counts of the cache scale test, ascending")
	fs.IntVar(&c.CreateWorkers, "create-workers", c.CreateWorkers, "concurrent ServiceAccount creates")
	fs.IntVar(&c.Pods, "pods", c.Pods, "Pods created through the API server with each registration (none, the floor, the mutating floor, irsa-webhook), each protocol and each number of creators")
	fs.IntVar(&c.PodsPaired, "pods-paired", c.PodsPaired, "Pods created through each registration when the registrations' creates are paired (interleaved one by one), each protocol and each number of creators; 0 skips the paired steps")
	fs.IntVar(&c.PodRound, "pod-round", c.PodRound, "Pods created with one registration before the next takes its turn")
	fs.IntVar(&c.PodWorkers, "pod-workers", c.PodWorkers, "concurrent Pod creators of the concurrent Pod step (the other has one)")
	fs.StringSliceVar(&c.VariantEnv, "variant-env", c.VariantEnv, "whole environment of a second irsa-webhook serve measured in the load part beside the first (empty: none)")
	fs.StringSliceVar(&c.FloorProtocols, "floor-protocols", c.FloorProtocols, "application protocols the floor offers (h2, http/1.1), as irsa-webhook serve does")
	fs.StringSliceVar(&c.WebhookArgs, "webhook-arg", c.WebhookArgs, "extra flag for irsa-webhook serve (repeatable), e.g. --webhook-arg=--pprof-bind-address=127.0.0.1:6060 to profile it under load")
	fs.StringVar(&c.Note, "note", c.Note, "a note on the run printed with the machine (e.g. that it was shared)")
}

// Validate names every bad flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	for _, p := range c.Parts {
		if !slices.Contains([]string{"micro", "load", "pods", "scale"}, p) {
			bad("parts", "%q is not one of micro, load, pods, scale", p)
		}
	}
	if slices.Contains(c.Parts, "micro") && c.Benchstat == "" {
		bad("benchstat", "is required for the micro part (make bench builds it); or leave micro out of --parts")
	}
	if c.BenchCount < 1 || c.BenchCount > 50 {
		bad("bench-count", "%d is outside [1, 50]", c.BenchCount)
	}
	if c.Duration < time.Second || c.Duration > 10*time.Minute {
		bad("duration", "%s is outside [1s, 10m]", c.Duration)
	}
	if c.Settle < 0 || c.Settle > time.Minute {
		bad("settle", "%s is outside [0, 1m]", c.Settle)
	}
	if c.Rounds < 1 || c.Rounds > 20 {
		bad("rounds", "%d is outside [1, 20]", c.Rounds)
	}
	for _, r := range c.Rates {
		if r < 1 || r > 50000 {
			bad("rates", "%d is outside [1, 50000]", r)
		}
	}
	if c.MaxWorkers < 1 || c.MaxWorkers > 1024 {
		bad("max-workers", "%d is outside [1, 1024]", c.MaxWorkers)
	}
	if c.MaxConns < 0 || c.MaxConns > 10000 {
		bad("max-connections", "%d is outside [0, 10000]", c.MaxConns)
	}
	if !slices.IsSorted(c.SACounts) {
		bad("sa-counts", "%v is not ascending", c.SACounts)
	}
	for _, n := range c.SACounts {
		if n < 1 || n > 1_000_000 {
			bad("sa-counts", "%d is outside [1, 1000000]", n)
		}
	}
	if c.CreateWorkers < 1 || c.CreateWorkers > 256 {
		bad("create-workers", "%d is outside [1, 256]", c.CreateWorkers)
	}
	if c.Pods < 1 || c.Pods > 100_000 {
		bad("pods", "%d is outside [1, 100000]", c.Pods)
	}
	if c.PodsPaired < 0 || c.PodsPaired > 100_000 {
		bad("pods-paired", "%d is outside [0, 100000]", c.PodsPaired)
	}
	if c.PodRound < 1 {
		bad("pod-round", "%d is not a positive number of Pods", c.PodRound)
	}
	if c.PodWorkers < 2 || c.PodWorkers > 256 {
		bad("pod-workers", "%d is outside [2, 256]", c.PodWorkers)
	}
	for _, e := range c.VariantEnv {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			bad("variant-env", "%q is not NAME=VALUE", e)
		}
	}
	for _, p := range c.FloorProtocols {
		if p != "h2" && p != "http/1.1" {
			bad("floor-protocols", "%q is not h2 or http/1.1", p)
		}
	}
	if len(c.FloorProtocols) == 0 {
		bad("floor-protocols", "offers nothing")
	}
	return errors.Join(errs...)
}

func (c *Config) has(part string) bool { return slices.Contains(c.Parts, part) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := runFloor(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench floor:", err)
			os.Exit(1)
		}
		return
	}
	cfg := NewConfig()
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	cfg.AddFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runFloor(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("floor", pflag.ContinueOnError)
	addr := fs.String("addr", "", "host:port to serve on (127.0.0.1)")
	certDir := fs.String("cert-dir", "", "directory holding tls.crt and tls.key")
	protos := fs.StringSlice("protocols", []string{"h2", "http/1.1"}, "application protocols offered in TLS (ALPN), in order of preference, as irsa-webhook serve offers them")
	learnFrom := fs.String("learn-from", "", "irsa-webhook's URL on 127.0.0.1: serve the mutating floor at "+bench.MutatingFloorPath+", answering with the patch irsa-webhook gives the first review")
	caFile := fs.String("ca-file", "", "PEM CA bundle to trust at --learn-from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var roots *x509.CertPool
	if *learnFrom != "" {
		u, err := url.Parse(*learnFrom)
		if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
			return fmt.Errorf("--learn-from %q: want an https URL on 127.0.0.1", *learnFrom)
		}
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		if roots = x509.NewCertPool(); !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no PEM certificate", *caFile)
		}
	}
	if *addr == "" || *certDir == "" {
		return errors.New("--addr and --cert-dir are required")
	}
	if host, _, _ := strings.Cut(*addr, ":"); host != "127.0.0.1" {
		return fmt.Errorf("--addr %q: the floor serves on 127.0.0.1 only", *addr)
	}
	for _, p := range *protos {
		if p != "h2" && p != "http/1.1" {
			return fmt.Errorf("--protocols: %q is not h2 or http/1.1", p)
		}
	}
	return bench.ServeFloor(ctx, *addr, *certDir, *protos, *learnFrom, roots)
}

func itoa(i int) string { return strconv.Itoa(i) }
