package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A report's marked sections and goal rows are read back as written, so a
// run that leaves a part out keeps that part's as the last run wrote them.
func TestKeptPartsRoundTrip(t *testing.T) {
	pods := "## 5. Pods\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
	scale := "## 4. Scale\n\ntext\n"
	report := "# Benchmarks\n\n| goal | measured | |\n|---|---|---|\n" +
		goalRow("load", "| p99 | 1.1× | met |\n") +
		goalRow("pods", "| added p99 (one creator) | 1.3× | **not met** |\n") +
		goalRow("pods", "| added p99 (16 creators) | 1.1× | met |") +
		"\n" + block("pods", pods) + block("scale", scale) + "## How it is measured\n"
	k := parseKept(report)
	if diff := cmp.Diff(map[string]string{"pods": pods, "scale": scale}, k.blocks); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	want := map[string][]string{
		"load": {"| p99 | 1.1× | met | <!-- goal:load -->\n"},
		"pods": {"| added p99 (one creator) | 1.3× | **not met** | <!-- goal:pods -->\n", "| added p99 (16 creators) | 1.1× | met | <!-- goal:pods -->\n"},
	}
	if diff := cmp.Diff(want, k.goals); diff != "" {
		t.Errorf("goal rows (-want +got):\n%s", diff)
	}
	// Written again, they read back the same.
	again := block("pods", k.blocks["pods"]) + k.goals["pods"][0]
	if k2 := parseKept(again); k2.blocks["pods"] != pods || len(k2.goals["pods"]) != 1 {
		t.Errorf("written again: %+v", k2)
	}
}
