// Command prebuild is what make e2e runs before the test packages: it
// builds every cached part of the e2e tier that is missing (the control
// plane, etcd, MinIO, SPIRE, helm, and the node tier where this machine
// can run one) with harness.BuildCached, so the packages, which go test
// runs in parallel, start on a warm cache instead of each building beside
// the others' tests. It prints one line per part with its duration and
// exits non-zero if any build fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, harness.BuildTimeout)
	defer cancel()
	o := harness.BuildOptions{Progress: os.Stderr}
	if why := harness.NodeUnsupported(); why != nil {
		fmt.Fprintln(os.Stderr, "prebuild: not building the node tier:", why)
	} else {
		o.Node = true
	}
	if err := harness.BuildCached(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "prebuild:", err)
		os.Exit(1)
	}
}
