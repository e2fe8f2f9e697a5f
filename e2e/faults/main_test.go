// Package faults holds the end-to-end fault tests: each starts its own Stack
// of real parts, drives steady admission load at it, injects one fault (an
// API server or etcd outage, a webhook restart, a certificate rotation, a
// signing key rotation, a burst of new ServiceAccounts), counts every
// request, reports the counts with t.Logf and asserts invariants on them:
// no Pod is ever admitted without the credentials it asked for, no request
// fails that a real API server would not have retried, nothing panics, and
// no process logs a token or private key. TestHostileNetwork attacks the
// webhook's and the discovery server's public ports as a hostile Pod or
// internet client would (announced bodies, big bodies, idle connections)
// and measures memory and the latency of well-behaved requests meanwhile.
//
// Knobs (environment variables, for longer local runs):
//
//	IRSA_FAULTS_OUTAGE      how long the API server and etcd stay down (default 30s,
//	                        long enough for client-go's reconnect backoff to reach its cap)
//	IRSA_FAULTS_CACHE_RACE  ServiceAccounts in the cache race (default 500)
//	IRSA_FAULTS_ATTACK_HOLD how long each hostile-network attack is held (default 10s)
//	IRSA_FAULTS_ATTACK_SCALE multiplies the attacks' connections and clients (default 1)
//	IRSA_FAULTS_ATTACK_REPORT a file to append the hostile-network numbers to, as JSON lines
package faults

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// bins are built once per run by TestMain.
var bins *harness.Binaries

// Knobs, read from the environment by TestMain.
var (
	outageDuration = 30 * time.Second
	cacheRaceCount = 500
	attackHold     = 10 * time.Second
	attackScale    = 1
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := readKnobs(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	var cleanup func()
	var err error
	if bins, cleanup, err = harness.BuildForPackage("faults"); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer cleanup()
	return m.Run()
}

func readKnobs() error {
	if v := os.Getenv("IRSA_FAULTS_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return fmt.Errorf("IRSA_FAULTS_OUTAGE=%q: want a duration between 1s and 10m", v)
		}
		outageDuration = d
	}
	if v := os.Getenv("IRSA_FAULTS_CACHE_RACE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("IRSA_FAULTS_CACHE_RACE=%q: want a count between 1 and 10000", v)
		}
		cacheRaceCount = n
	}
	if v := os.Getenv("IRSA_FAULTS_ATTACK_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 30*time.Minute {
			return fmt.Errorf("IRSA_FAULTS_ATTACK_HOLD=%q: want a duration between 1s and 30m", v)
		}
		attackHold = d
	}
	if v := os.Getenv("IRSA_FAULTS_ATTACK_SCALE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16 {
			return fmt.Errorf("IRSA_FAULTS_ATTACK_SCALE=%q: want a number between 1 and 16", v)
		}
		attackScale = n
	}
	return nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
