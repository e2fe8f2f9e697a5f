// Command hostilereport writes the numbers TestHostileNetwork measured
// (the JSON lines it appends to IRSA_FAULTS_ATTACK_REPORT) into the
// "Hostile network: measured" section of docs/security.md, between the
// markers
//
//	<!-- hostile-network:begin -->
//	<!-- hostile-network:end -->
//
// replacing what was there. With several results for one server, pattern
// and scale the last one wins.
//
//	cd e2e && IRSA_FAULTS_ATTACK_REPORT=$PWD/hostile.jsonl go test -count=1 -run TestHostileNetwork ./faults/
//	go run ./cmd/hostilereport -in hostile.jsonl -doc ../docs/security.md -label "commit abc1234"
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- hostile-network:begin -->"
	endMarker   = "<!-- hostile-network:end -->"
)

// result is the part of the test's attackResult the report shows.
type result struct {
	Server         string         `json:"server"`
	Pattern        string         `json:"pattern"`
	Attack         string         `json:"attack"`
	HoldSeconds    float64        `json:"holdSeconds"`
	HoldSetting    string         `json:"holdSetting"`
	Scale          int            `json:"scale"`
	LimitMiB       float64        `json:"limitMiB"`
	BaselineRSSMiB float64        `json:"baselineRSSMiB"`
	PeakRSSMiB     float64        `json:"peakRSSMiB"`
	HWMMiB         float64        `json:"hwmMiB"`
	PeakHeapMiB    float64        `json:"peakHeapInuseMiB"`
	Aborted        bool           `json:"aborted"`
	Probes         int            `json:"probes"`
	ProbeFailures  int            `json:"probeFailures"`
	P50Ms          float64        `json:"p50Ms"`
	P99Ms          float64        `json:"p99Ms"`
	MaxMs          float64        `json:"maxMs"`
	OverOneSecond  int            `json:"overOneSecond"`
	ReadyChecks    int            `json:"readyChecks"`
	ReadyFailures  int            `json:"readyFailures"`
	ReadyWorstRun  int            `json:"readyWorstRun"`
	Counts         map[string]int `json:"counts"`
	Passed         bool           `json:"passed"`
	When           string         `json:"when"`
}

func main() {
	in := flag.String("in", "", "JSON lines written by TestHostileNetwork (IRSA_FAULTS_ATTACK_REPORT)")
	doc := flag.String("doc", "", "the Markdown file to update (docs/security.md)")
	label := flag.String("label", "", "what was measured, e.g. a commit")
	flag.Parse()
	if err := run(*in, *doc, *label); err != nil {
		fmt.Fprintln(os.Stderr, "hostilereport:", err)
		os.Exit(1)
	}
}

func run(in, doc, label string) error {
	if in == "" || doc == "" {
		return errors.New("-in and -doc are required")
	}
	results, err := readResults(in)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	out, err := replaceBlock(text, render(results, label))
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	return os.WriteFile(doc, out, 0o644)
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	latest := map[string]result{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		latest[fmt.Sprintf("%s/%s/%d", r.Server, r.Pattern, r.Scale)] = r
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(latest) == 0 {
		return nil, fmt.Errorf("%s holds no results", path)
	}
	var out []result
	for _, r := range latest {
		out = append(out, r)
	}
	order := map[string]int{"announced-bodies": 0, "big-bodies": 1, "idle-connections": 2}
	slices.SortFunc(out, func(a, b result) int {
		if c := strings.Compare(b.Server, a.Server); c != 0 { // webhook first
			return c
		}
		if a.Scale != b.Scale {
			return a.Scale - b.Scale
		}
		return order[a.Pattern] - order[b.Pattern]
	})
	return out, nil
}

func render(results []result, label string) string {
	var b strings.Builder
	when := results[0].When
	for _, r := range results {
		when = max(when, r.When)
	}
	if t, err := time.Parse(time.RFC3339, when); err == nil {
		when = t.Format("2006-01-02")
	}
	fmt.Fprintf(&b, "Measured %s", when)
	if label != "" {
		fmt.Fprintf(&b, " on %s", label)
	}
	b.WriteString(" (2-core machine, loopback, the attack client on the same cores). Commands:\n\n")
	var runs []string
	for _, r := range results {
		cmd := fmt.Sprintf("cd e2e && IRSA_FAULTS_ATTACK_HOLD=%s IRSA_FAULTS_ATTACK_SCALE=%d IRSA_FAULTS_ATTACK_REPORT=$PWD/hostile.jsonl go test -count=1 -v -timeout 60m -run TestHostileNetwork ./faults/",
			r.HoldSetting, r.Scale)
		if !slices.Contains(runs, cmd) {
			runs = append(runs, cmd)
		}
	}
	b.WriteString("```sh\n")
	for _, c := range runs {
		b.WriteString(c + "\n")
	}
	b.WriteString("go run ./cmd/hostilereport -in hostile.jsonl -doc ../docs/security.md\n```\n\n")
	b.WriteString("| server | pattern | attack | held | RSS before | peak RSS (VmHWM; Go heap in use) | limit | requests | failed | p50 | p99 | max | over 1 s | readiness failed (longest run) | bounds |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		verdict := "kept"
		if !r.Passed {
			verdict = "**broken**"
		}
		peak := fmt.Sprintf("%.0f MiB (%.0f; %.0f)", r.PeakRSSMiB, r.HWMMiB, r.PeakHeapMiB)
		if r.Aborted {
			peak += ", attack stopped at 4x the limit"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f MiB | %s | %.0f MiB | %d | %d | %s | %s | %s | %d | %d of %d (%d) | %s |\n",
			r.Server, r.Pattern, r.Attack, holdText(r), r.BaselineRSSMiB, peak, r.LimitMiB, r.Probes, r.ProbeFailures,
			msText(r.P50Ms), msText(r.P99Ms), msText(r.MaxMs), r.OverOneSecond, r.ReadyFailures, r.ReadyChecks, r.ReadyWorstRun, verdict)
	}
	b.WriteString("\nWhat each attack met, as it counted it:\n\n")
	for _, r := range results {
		keys := make([]string, 0, len(r.Counts))
		for k := range r.Counts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Counts[k]))
		}
		fmt.Fprintf(&b, "- %s/%s (scale %d): %s\n", r.Server, r.Pattern, r.Scale, strings.Join(parts, "; "))
	}
	return b.String()
}

func holdText(r result) string {
	return (time.Duration(r.HoldSeconds * float64(time.Second))).Round(time.Second).String()
}

func msText(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// replaceBlock puts block between the markers of text.
func replaceBlock(text []byte, block string) ([]byte, error) {
	i := bytes.Index(text, []byte(beginMarker))
	j := bytes.Index(text, []byte(endMarker))
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %s ... %s block", beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(text[:i+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(block)
	out.Write(text[j:])
	return out.Bytes(), nil
}
