package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunReplacesOnlyTheBlockAndKeepsTheLastResult(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "r.jsonl")
	lines := []string{
		`{"server":"webhook","pattern":"big-bodies","attack":"first","holdSetting":"10s","holdSeconds":10,"scale":1,"limitMiB":256,"peakRSSMiB":900,"hwmMiB":910,"probes":10,"probeFailures":3,"p50Ms":12,"p99Ms":10000,"maxMs":10001,"passed":false,"when":"2026-12-03T12:00:00Z"}`,
		`{"server":"discovery","pattern":"idle-connections","attack":"1100 idle","holdSetting":"10s","holdSeconds":10,"scale":1,"limitMiB":128,"peakRSSMiB":20,"hwmMiB":21,"probes":50,"p50Ms":3,"p99Ms":9,"maxMs":11,"passed":true,"counts":{"answered 200":1100},"when":"2026-12-03T12:01:00Z"}`,
		``,
		`{"server":"webhook","pattern":"big-bodies","attack":"second","holdSetting":"10s","holdSeconds":10,"scale":1,"limitMiB":256,"peakRSSMiB":120,"hwmMiB":121,"peakHeapInuseMiB":80,"probes":40,"p50Ms":20,"p99Ms":1500,"maxMs":1600,"overOneSecond":2,"passed":true,"when":"2026-12-03T13:00:00Z"}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "doc.md")
	before := "# Title\n\nprose before\n\n" + beginMarker + "\nstale table\n" + endMarker + "\n\nprose after\n"
	if err := os.WriteFile(doc, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, doc, "commit abc"); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"prose before\n\n" + beginMarker + "\nMeasured 2026-12-03 on commit abc",
		"| webhook | big-bodies | second | 10s | 0 MiB | 120 MiB (121; 80) | 256 MiB | 40 | 0 | 20 ms | 1.5 s | 1.6 s | 2 |",
		"| discovery | idle-connections | 1100 idle |",
		"- discovery/idle-connections (scale 1): answered 200: 1100",
		"IRSA_FAULTS_ATTACK_HOLD=10s IRSA_FAULTS_ATTACK_SCALE=1",
		endMarker + "\n\nprose after\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"stale table", "| first |"} {
		if strings.Contains(got, gone) {
			t.Errorf("report still holds %q:\n%s", gone, got)
		}
	}
	if strings.Index(got, "| webhook |") > strings.Index(got, "| discovery |") {
		t.Errorf("webhook rows should come first:\n%s", got)
	}
}

func TestRunRefusesADocWithoutMarkers(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "r.jsonl")
	if err := os.WriteFile(in, []byte(`{"server":"webhook","pattern":"big-bodies","scale":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "doc.md")
	if err := os.WriteFile(doc, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, doc, ""); err == nil || !strings.Contains(err.Error(), "no "+beginMarker) {
		t.Fatalf("run = %v, want an error naming the missing block", err)
	}
	if data, _ := os.ReadFile(doc); string(data) != "no markers\n" {
		t.Errorf("doc changed to %q", data)
	}
}
