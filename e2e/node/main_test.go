package node

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/images"
)

// bins are built once per run by TestMain; nil when the machine cannot
// run a node (unsupported says why).
var (
	bins        *harness.Binaries
	unsupported error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if unsupported = harness.NodeUnsupported(); unsupported != nil {
		fmt.Fprintln(os.Stderr, "e2e/node: skipping every test:", unsupported)
		return m.Run()
	}
	out, err := os.MkdirTemp("", "irsa-e2e-node-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/node:", err)
		return 1
	}
	defer os.RemoveAll(out)
	ctx, cancel := contextWithTimeout(harness.BuildTimeout)
	defer cancel()
	if bins, err = harness.Build(ctx, harness.BuildOptions{OutDir: out, Progress: os.Stderr, Node: true, NodeImages: nodeImages}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/node:", err)
		return 1
	}
	return m.Run()
}

// nodeImages builds the s3get and pause images and the product image
// (for the install tests) with e2e/images.
func nodeImages(ctx context.Context, repoRoot, outDir string) (*harness.NodeImages, error) {
	o := images.Options{RepoRoot: repoRoot, OutDir: outDir}
	t, err := images.Build(ctx, o)
	if err != nil {
		return nil, err
	}
	webhook, err := images.BuildWebhook(ctx, o)
	if err != nil {
		return nil, err
	}
	return &harness.NodeImages{
		S3GetRef: images.S3GetRef, S3GetTarball: t.S3Get,
		PauseRef: images.PauseRef, PauseTarball: t.Pause,
		WebhookRef: images.WebhookRef, WebhookTarball: webhook,
	}, nil
}

// startNode starts a Stack with the node tier, or skips the test when the
// machine cannot run one.
func startNode(t *testing.T) *harness.Stack {
	t.Helper()
	if unsupported != nil {
		t.Skip(unsupported)
	}
	return harness.StartForTest(t, bins, harness.Options{Node: true})
}
