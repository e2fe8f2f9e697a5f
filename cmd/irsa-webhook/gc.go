package main

import (
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. The webhook keeps little live memory (a few MB, about 10 MB with
// 100k ServiceAccounts cached) and allocates for every admission, so at Go's
// default of 100 it collects dozens of times a second under load, and the
// collector was the largest cost it adds over a webhook that does nothing:
// at 100, its CPU per admission was 1.7 times the floor's in
// docs/benchmarks.md and its throughput 65% of it; at 400, 1.25 times and
// 81%. The price is heap: up to five times the live memory between
// collections, tens of MB. The install sets GOMEMLIMIT to the container's
// memory limit, so the collector works harder near it instead of the
// container being killed.
const serveGCPercent = 400

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
