package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
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
		// The parent's listeners, inherited as fds 3 and 4.
		ls := &testListeners{main: inheritedListener(3), health: inheritedListener(4)}
		os.Exit(runMainContext(withTestListeners(context.Background(), ls), strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	served, health := listen(t), listen(t)
	args := []string{"discovery", "serve", "--issuer", testIssuer, "--key-file", testKey("rsa.pub"), "--insecure-http",
		"--metrics-bind-address", "0"}
	child := exec.Command(os.Args[0], "-test.run=^TestDiscoveryServeStopsOnSIGTERM$")
	child.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\n"))
	for _, ln := range []net.Listener{served, health} {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		child.ExtraFiles = append(child.ExtraFiles, f)
	}
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
		resp, err := client.Get(fmt.Sprintf("http://%s/readyz", health.Addr()))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, _, _ := get(t, client, fmt.Sprintf("http://%s/cluster-1/openid/v1/jwks", served.Addr())); code != http.StatusOK {
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

// inheritedListener is the listening socket the parent passed as fd.
func inheritedListener(fd uintptr) net.Listener {
	f := os.NewFile(fd, "listener")
	ln, err := net.FileListener(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "inherited listener %d: %v\n", fd, err)
		os.Exit(2)
	}
	_ = f.Close() // FileListener holds its own copy
	return ln
}
