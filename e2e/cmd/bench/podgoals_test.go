package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/bench"
)

// pods is one load's four steps, in turns or paired, with these p99s (ms)
// for no webhook, the floor, the mutating floor and irsa-webhook.
func pods(paired bool, none, floor, mutating, irsa int) []bench.PodCreates {
	var out []bench.PodCreates
	for i, mode := range []string{bench.PodsNoWebhook, bench.PodsFloor, bench.PodsMutatingFloor, bench.PodsWebhook} {
		p99 := time.Duration([]int{none, floor, mutating, irsa}[i]) * time.Millisecond
		out = append(out, bench.PodCreates{Mode: mode, Proto: bench.HTTP2, Workers: 16, Count: 100, Paired: paired, P99: p99, Mean: p99 / 2, HalfP99: [2]time.Duration{p99, p99}})
	}
	return out
}

func goalRows(r *results) string {
	var b strings.Builder
	podGoals(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, r)
	return b.String()
}

// The goal is read from the paired steps when the run has them; the
// turns' ratio is then context. Without paired steps it is the turns'.
func TestPodGoalsReadThePairedSteps(t *testing.T) {
	// In turns irsa-webhook adds 3× what the mutating floor adds; paired, 1×.
	turns := pods(false, 100, 110, 110, 130)
	paired := pods(true, 100, 110, 110, 110)

	got := goalRows(&results{Pods: append(append([]bench.PodCreates{}, turns...), paired...)})
	for _, want := range []string{
		"(16 concurrent creators, HTTP/2, paired creates) | 1.00× (10.00 ms vs 10.00 ms) (halves of the run: 1.00×, 1.00×)",
		"| met |",
		"the same in turns of a few hundred creates: added p99 vs the mutating floor's | 3.00× (30.00 ms vs 10.00 ms)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goal rows lack %q:\n%s", want, got)
		}
	}

	got = goalRows(&results{Pods: turns})
	if want := "(16 concurrent creators, HTTP/2, turns) | 3.00× (30.00 ms vs 10.00 ms);"; !strings.Contains(got, want) || !strings.Contains(got, "**not met**") {
		t.Errorf("without paired steps the goal should be the turns' and not met:\n%s", got)
	}
	if strings.Contains(got, "the same in turns") {
		t.Errorf("without paired steps there is no turns context row:\n%s", got)
	}
}

// The default is held to the throughput of the variant, serve as it ran
// before its default GOGC changed, not the other way round.
func TestLoadGoalHoldsTheDefaultToTheVariantsThroughput(t *testing.T) {
	const variant = "irsa-webhook GOGC=400 GOMEMLIMIT=256MiB"
	step := func(target string, throughput float64) bench.LoadStep {
		return bench.LoadStep{Target: target, KeepAlive: true, Throughput: throughput, RSSMax: 80 << 20}
	}
	rows := func(irsa, before float64) string {
		var b strings.Builder
		loadGoals(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) },
			&results{Load: []bench.LoadStep{step("irsa-webhook", irsa), step(variant, before), step("floor", 20000)}})
		return b.String()
	}
	row := "| irsa-webhook: maximum throughput at most 10% below " + variant + "'s (serve's default before) | "
	if got := rows(9500, 10000); !strings.Contains(got, row+"9500/s vs 10000/s (95%) | met |") {
		t.Errorf("5%% below the variant should meet the goal:\n%s", got)
	}
	if got := rows(8500, 10000); !strings.Contains(got, row+"8500/s vs 10000/s (85%) | **not met** |") {
		t.Errorf("15%% below the variant should not meet the goal:\n%s", got)
	}
}
