package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func buildPause(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procState is the state letter of /proc/PID/stat (S sleeping, Z exited
// and not yet waited for).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name is in parentheses and may hold spaces.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	return strings.Fields(rest)[0]
}

func TestPauseWaitsForTheStopSignalAndExitsZero(t *testing.T) {
	bin := buildPause(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck // already gone when the test passes
			lines := bufio.NewScanner(stderr)
			if !lines.Scan() || lines.Text() != "pause: waiting for SIGINT or SIGTERM" {
				t.Fatalf("first line %q, want the ready line", lines.Text())
			}
			// Ready, and still running: it does not exit on its own.
			if st := procState(t, cmd.Process.Pid); st == "Z" {
				t.Fatal("pause exited before any signal")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for lines.Scan() {
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %s: %v, want exit status 0", sig, err)
			}
			if ctx.Err() != nil {
				t.Fatalf("pause did not exit within the bound after %s", sig)
			}
		})
	}
}
