package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childArgsEnv carries the arguments of `discovery serve` into the test
// binary re-run as a child process.
const childArgsEnv = "IRSA_WEBHOOK_TEST_DISCOVERY_ARGS"

// TestDiscoveryServeStopsOnSIGTERM runs `discovery serve` as its own
// process, through main's signal handling, waits until it is ready, sends
// SIGTERM, and expects a clean exit.
func TestDiscoveryServeStopsOnSIGTERM(t *testing.T) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(runMain(strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	port, health := freePort(t), freePort(t)
	args := []string{"discovery", "serve", "--issuer", testIssuer, "--key-file", testKey("rsa.pub"), "--insecure-http",
		"--bind-address", "127.0.0.1", "--port", strconv.Itoa(port),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health), "--metrics-bind-address", "0"}
	child := exec.Command(os.Args[0], "-test.run=^TestDiscoveryServeStopsOnSIGTERM$")
	child.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\n"))
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	defer func() {
		if child.ProcessState == nil {
			_ = child.Process.Kill()
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	waitUntil(t, 30*time.Second, "the child to be ready", func() bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", health))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, _, _ := get(t, client, fmt.Sprintf("http://127.0.0.1:%d/cluster-1/openid/v1/jwks", port)); code != http.StatusOK {
		t.Fatalf("JWKS = %d", code)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("discovery serve exited with %v after SIGTERM:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("discovery serve still running 30s after SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "starting discovery server") {
		t.Errorf("child logs lack the start message:\n%s", stderr.String())
	}
}
