package node

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// The node tier, run twice in a row with a Pod each time, leaves the host
// as it found it: no mount under its directory or the kubelet's and CNI's
// host paths, no network namespace, no bridge, no iptables chain, no
// kubepods cgroup, no changed sysctl, no process.
func TestNodeTierLeavesHostAsFound(t *testing.T) {
	if unsupported != nil {
		t.Skip(unsupported)
	}
	// Stop itself compares the host with what the node tier found (under
	// the machine's node lock, so that another node tier of this machine
	// cannot change the host in between) and fails otherwise; a snapshot
	// here, outside the lock, would see another tier's bridge come and go.
	for round := 1; round <= 2; round++ {
		dir, err := os.MkdirTemp("", "irsa-e2e-node-teardown-")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		s, err := harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins, Node: true, Progress: testLog{t}})
		var pids []int
		if err == nil {
			const ns, sa = "teardown", "reader"
			workloadNamespace(t, ctx, s, ns, sa, nil)
			deploy(t, ctx, s, ns, "s3get", sa, 5*time.Second, nil)
			if _, err = harness.RunningPod(ctx, s.APIServer.Client, ns, "s3get", podTimeout); err == nil {
				for _, p := range s.Processes() {
					pids = append(pids, p.PID())
				}
			}
		}
		cancel()
		if s != nil {
			if stopErr := s.Stop(); stopErr != nil {
				t.Errorf("round %d: stop: %v", round, stopErr)
			}
		}
		if err != nil {
			if s != nil {
				var b strings.Builder
				s.DumpLogs(&b, 40)
				t.Logf("logs (kept in %s):\n%s", dir, b.String())
			}
			t.Fatalf("round %d: %v", round, err)
		}
		mounts, err := harness.SnapshotHost(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(mounts.Mounts) > 0 {
			t.Errorf("round %d: mounts left under the stack dir or host paths: %v", round, mounts.Mounts)
		}
		for _, pid := range pids {
			if pid > 0 && processAlive(pid) {
				t.Errorf("round %d: process %d still runs", round, pid)
			}
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
