package main

import (
	"math"
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. The goal (docs/benchmarks.md) is RSS at maximum keep-alive load
// within 1.5 times the floor webhook's, at no more than 10% less throughput
// than serve reached at GOGC=400, its default until then. Measured by
// `make bench-load` on a quiet 2-core machine, each beside GOGC=400 with
// GOMEMLIMIT as the install sets it in the same run: Go's default, 100,
// reached 86% of that throughput (9883/s against 11503/s) at 1.11 times the
// floor's RSS (docs/benchmarks.md as of commit 8ddaa73); 200 reached 98%
// (10209/s against 10389/s) at 1.20 times the floor's RSS (87 MiB), where
// 400 took 1.56 times it (113 MiB). 200 meets both. The install sets
// GOMEMLIMIT to the container's memory limit (held to 90% of it,
// holdMemoryLimit), so the collector works harder near it instead of the
// container being killed.
const serveGCPercent = 200

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

// memoryLimitRatio is the share of GOMEMLIMIT the Go runtime is held to.
// The install sets GOMEMLIMIT to the container's memory limit, which the
// runtime then fills with heap it could collect: under 256 clients sending
// 6 MiB reviews the RSS passed the 256 MiB limit, with 200 MiB of heap in
// use, since the limit does not count what the kernel keeps of freed pages
// and the memory outside the Go heap. The rest is room for those.
const memoryLimitRatio = 0.9

// holdMemoryLimit lowers the runtime's memory limit to memoryLimitRatio of
// GOMEMLIMIT, when the environment sets one, and returns the limit in
// force (math.MaxInt64 for none). It runs before anything sizes itself
// from the limit (the body budget).
func holdMemoryLimit(lookupEnv func(string) (string, bool)) int64 {
	limit := debug.SetMemoryLimit(-1)
	if v, set := lookupEnv("GOMEMLIMIT"); !set || v == "" || v == "off" || limit == math.MaxInt64 || limit <= 0 {
		return limit
	}
	held := int64(float64(limit) * memoryLimitRatio)
	debug.SetMemoryLimit(held)
	return held
}
