package main

import (
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set: Go's own default. It was 400, when the collector was the largest
// cost the webhook added over a webhook that does nothing; with the request
// body budget and pooled buffers, docs/benchmarks.md measured, in one run at
// maximum keep-alive load, 400 reaching 9538 admissions/s with 148 MiB RSS
// (1.80 times the floor's) and 100, with GOMEMLIMIT as the install sets it,
// 8701/s (91% of that) with 87 MiB (1.05 times the floor's). The goal is RSS
// within 1.5 times the floor's at no more than 10% less throughput: 100 meets
// both, 400 not the first. The install sets GOMEMLIMIT to the container's
// memory limit, so the collector works harder near it instead of the
// container being killed.
const serveGCPercent = 100

// setServeGCPercent applies serveGCPercent unless the environment sets GOGC,
// and returns the percentage in force.
func setServeGCPercent(lookupEnv func(string) (string, bool)) int {
	if _, set := lookupEnv("GOGC"); set {
		// Reading the current value means setting it; set it back.
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}
