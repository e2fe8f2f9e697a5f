package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// micro is the handler micro-benchmarks' output and its benchstat summaries.
type micro struct {
	RawFile    string // relative to the checkout
	BeforeFile string // the recorded run before the patch change, if present
	Summary    string // benchstat of this run
	BeforeVs   string // benchstat before vs this run
	Count      int
	BenchTime  string
}

// beforeFile holds BenchmarkHandle, BenchmarkServeHTTP and BenchmarkApply as
// they were before the handler diffed only what the mutation changes.
const beforeFile = "handler-before.txt"

func runMicro(ctx context.Context, root string, cfg *Config) (*micro, error) {
	m := &micro{RawFile: filepath.Join(cfg.RawDir, "handler.txt"), Count: cfg.BenchCount, BenchTime: cfg.BenchTime}
	logf("micro-benchmarks: -count %d -benchtime %s", cfg.BenchCount, cfg.BenchTime)
	// BenchmarkAPIServerPatch measures kube-apiserver's side of the patch,
	// not the handler; "Where the time goes" reports it.
	out, err := goCommand(ctx, root, "test", "-run", "^$", "-bench", ".", "-skip", "APIServerPatch", "-benchmem",
		"-count", itoa(cfg.BenchCount), "-benchtime", cfg.BenchTime, "./pkg/webhook/", "./internal/admissionjson/", "./pkg/mutate/")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, cfg.RawDir), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(root, m.RawFile), out, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", m.RawFile, err)
	}
	if m.Summary, err = benchstat(ctx, root, cfg.Benchstat, m.RawFile); err != nil {
		return nil, err
	}
	before := filepath.Join(cfg.RawDir, beforeFile)
	if _, err := os.Stat(filepath.Join(root, before)); err == nil {
		m.BeforeFile = before
		if m.BeforeVs, err = benchstat(ctx, root, cfg.Benchstat, "before="+before, "after="+m.RawFile); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func benchstat(ctx context.Context, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("benchstat %v: %w: %s", args, err, stderr.Bytes())
	}
	return stdout.String(), nil
}
