package main

import (
	"math"
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. The goal (docs/benchmarks.md) is RSS at maximum keep-alive load
// within 1.5 times the floor webhook's, at no more than 10% less throughput
// than serve reaches at GOGC=400, its first default, without giving up the
// p99 at fixed rates. Measured by `make bench-load` on a 2-core machine,
// each beside GOGC=400 with GOMEMLIMIT as the install sets it in the same
// run: Go's default, 100, reached 86% of that throughput (commit 8ddaa73);
// 200 reached 98% at 1.20 times the floor's RSS (87 MiB), where 400 took
// 1.56 times it. Once the handler cost a third less CPU and made a third
// less garbage, 400 gained on 200, and the runs' noise grew larger than
// the differences: 200 reached 91%, 89.6% and 97% of 400's throughput in
// three runs (commits 5687b55, 4169c58, 229f698) at 1.25 to 1.46 times the
// floor's RSS; 250 88%; 300 96% and 98% at 1.38 and 1.42 times it. The
// p99 at 2000/s was 1.1 to 2.4 times the floor's at 200 and 1.7 times it
// at 300, in both of its runs; that tail turned out to be the generator
// opening its connections at each round's start, which the bench now
// leaves out. With the Pods in pooled memory (a third less garbage again,
// 95ecc33), 200 reached 107% of 400's throughput at 1.26 times the floor's
// RSS, and beside 300 in one run: p99 within 0.88 to 1.07 times the
// floor's at every fixed rate for both, 300 with 8% more throughput and
// 12% more RSS (74.7 MiB against 66.7). 200 is kept, for its smaller heap. The install sets GOMEMLIMIT to the
// container's memory limit (held to 90% of it, holdMemoryLimit), so the
// collector works harder near it instead of the container being killed.
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
