// Package scenarios holds the end-to-end scenarios: each test starts its own
// Stack of real parts (etcd, kube-apiserver, the irsa-webhook binary's serve
// and discovery serve, MinIO) and drives it as a user would.
package scenarios

import (
	"fmt"
	"os"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// bins are built once per run by TestMain.
var bins *harness.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var cleanup func()
	var err error
	if bins, cleanup, err = harness.BuildForPackage("e2e"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cleanup()
	return m.Run()
}
