// Package scenarios holds the end-to-end scenarios: each test starts its own
// Stack of real parts (etcd, kube-apiserver, the irsa-webhook binary's serve
// and discovery serve, MinIO) and drives it as a user would.
package scenarios

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// bins are built once per run by TestMain.
var bins *harness.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	out, err := os.MkdirTemp("", "irsa-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(out)
	// A cold build of kube-apiserver takes up to ~10 minutes on 2 cores.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bins, err = harness.Build(ctx, harness.BuildOptions{OutDir: out, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}
