// Command release writes a release into one directory (make release): the
// static binaries and SHA256SUMS, the image as an OCI layout, the chart
// packaged with the same version and install.yaml, both pinned to the
// image's digest, and then checks what it wrote (e2e/release).
//
//	release --version v0.2.0 --dist dist --binary linux/amd64=bin/a --binary linux/arm64=bin/b
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("release", pflag.ContinueOnError)
	version := fs.String("version", "", "Release tag, vMAJOR.MINOR.PATCH[-pre].")
	dist := fs.String("dist", "dist", "Output directory; must not exist or be empty.")
	binaries := fs.StringArray("binary", nil, "platform=path of a static irsa-webhook binary; repeat per platform.")
	revision := fs.String("revision", "", "Commit of the release, for the image's labels.")
	epoch := fs.String("source-date-epoch", "", "Unix time of every timestamp in the image (the commit's).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	bins := map[string]string{}
	var platforms []string
	for _, b := range *binaries {
		p, path, ok := strings.Cut(b, "=")
		if !ok || path == "" {
			return fmt.Errorf("--binary %q: want platform=path", b)
		}
		bins[p] = path
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	var created time.Time
	if *epoch != "" {
		n, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("--source-date-epoch: %w", err)
		}
		created = time.Unix(n, 0).UTC()
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	helm, err := harness.BuildHelm(ctx, "", os.Stderr)
	if err != nil {
		return err
	}
	digest, err := release.Run(ctx, release.Options{Version: *version, RepoRoot: root, Dist: *dist, Helm: helm, Binaries: bins, Revision: *revision, Created: created})
	if err != nil {
		return err
	}
	if _, err := release.Check(*dist, *version, platforms); err != nil {
		return fmt.Errorf("the release in %s does not hold together: %w", *dist, err)
	}
	fmt.Printf("wrote %s: irsa-webhook %s, image %s@%s\n", *dist, *version, "ghcr.io/irsa-webhook/irsa-webhook:"+*version, digest)
	return nil
}
