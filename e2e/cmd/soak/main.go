// Command soak is what `make soak` runs: it starts a local stack of real
// parts (as the e2e tests do), then for -duration keeps a steady stream of
// Pod creations (dry runs, so nothing piles up in etcd) flowing through the
// API server and the webhook, churns ServiceAccounts (create annotated,
// re-annotate, delete) every -churn, and rotates the webhook's serving
// certificate once, the way kubelet updates a mounted Secret. Every
// -sample it reads the webhook's resident memory and goroutine count from
// its /metrics and the latency of the requests since the last sample.
//
// It writes samples.csv, summary.json, summary.md and soak.svg (memory,
// goroutines and p99 latency over time) into -out, stops every process it
// started, and exits non-zero if any request failed or any Pod was not
// injected. Everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

type config struct {
	duration time.Duration
	out      string
	workers  int
	sample   time.Duration
	churn    time.Duration
	rotateAt time.Duration
}

func main() {
	cfg := config{}
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	fs.DurationVar(&cfg.duration, "duration", 10*time.Minute, "How long the load runs (1m to 24h).")
	fs.StringVar(&cfg.out, "out", "", "Directory for samples.csv, summary.json, summary.md and soak.svg. Default: a new temporary directory.")
	fs.IntVar(&cfg.workers, "workers", 4, "Concurrent Pod creations.")
	fs.DurationVar(&cfg.sample, "sample", 5*time.Second, "Interval between samples of memory, goroutines and latency.")
	fs.DurationVar(&cfg.churn, "churn", 15*time.Second, "Interval between ServiceAccount churn rounds.")
	fs.DurationVar(&cfg.rotateAt, "rotate-at", 0, "When to rotate the serving certificate. Default: half of -duration.")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: soak [flags]

Soak the webhook on a local stack and report memory, goroutines, errors and
latency drift over time.

Examples:
  go run ./cmd/soak -duration 10m -out soak-results
  make soak DURATION=3m

Flags:
`)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak failed:", err)
		os.Exit(1)
	}
}

func (c *config) validate() error {
	var errs []error
	if c.duration < time.Minute || c.duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("-duration: %s is outside [1m, 24h]", c.duration))
	}
	if c.workers < 1 || c.workers > 64 {
		errs = append(errs, fmt.Errorf("-workers: %d is outside [1, 64]", c.workers))
	}
	if c.sample < time.Second || c.sample > c.duration/4 {
		errs = append(errs, fmt.Errorf("-sample: %s must be at least 1s and at most a quarter of -duration", c.sample))
	}
	if c.churn < time.Second {
		errs = append(errs, fmt.Errorf("-churn: %s is shorter than 1s", c.churn))
	}
	if c.rotateAt == 0 {
		c.rotateAt = c.duration / 2
	}
	if c.rotateAt < 0 || c.rotateAt >= c.duration {
		errs = append(errs, fmt.Errorf("-rotate-at: %s is not within -duration", c.rotateAt))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.out == "" {
		if cfg.out, err = os.MkdirTemp("", "irsa-webhook-soak-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("create -out: %w", err)
	}
	dir, err := os.MkdirTemp("", "irsa-webhook-soak-stack-")
	if err != nil {
		return err
	}
	// The whole run is bounded: build, start, the load, and the report.
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+50*time.Minute)
	defer cancel()
	bins, err := harness.Build(ctx, harness.BuildOptions{OutDir: filepath.Join(dir, "bin"), Progress: out})
	if err != nil {
		return err
	}
	s, err := harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins, Progress: out})
	defer func() {
		if s == nil {
			return
		}
		if stopErr := s.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		if err != nil {
			s.DumpLogs(os.Stderr, 20)
			fmt.Fprintf(os.Stderr, "logs kept in %s\n", s.LogDir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	if err != nil {
		return err
	}
	res, err := soak(ctx, cfg, s, out)
	if err != nil {
		return err
	}
	if err := res.write(cfg.out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s\nresults in %s\n", res.markdown(), cfg.out)
	return res.verdict()
}
