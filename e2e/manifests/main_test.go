package manifests_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// The apply tests need the real control plane; they build it once, lazily,
// so the offline tests stay fast (and -short skips the apply tests).
var (
	buildOnce sync.Once
	bins      *harness.Binaries
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) *harness.Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "irsa-manifests-bin-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), harness.BuildTimeout)
		defer cancel()
		bins, buildErr = harness.Build(ctx, harness.BuildOptions{OutDir: binDir, Progress: os.Stderr})
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintln(os.Stderr, "remove", binDir, err)
		}
	}
	os.Exit(code)
}
