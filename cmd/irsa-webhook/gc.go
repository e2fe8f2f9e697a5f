package main

import (
	"math"
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
// memory limit (held to 90% of it, holdMemoryLimit), so the collector works harder near it instead of the
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
