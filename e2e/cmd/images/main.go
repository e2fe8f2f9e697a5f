// Command images writes the e2e tier's s3get and pause images as
// docker-save tarballs for a node to import (package e2e/images); `make
// e2e-images` runs it.
//
//	images --out bin/image [--platform linux/arm64] [--source-date-epoch N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/e2e/images"
	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

func main() {
	out := flag.String("out", "", "Directory for s3get.tar, pause.tar and their binaries in bin/.")
	platform := flag.String("platform", image.HostPlatform(), "Platform of the images.")
	epoch := flag.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Every timestamp of the images, in Unix seconds; default $SOURCE_DATE_EPOCH, else the Unix epoch.")
	flag.Parse()
	if err := run(*out, *platform, *epoch); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(out, platform, epoch string) error {
	if out == "" {
		return fmt.Errorf("--out is required")
	}
	var created time.Time
	if epoch != "" {
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || s < 0 {
			return fmt.Errorf("--source-date-epoch: %q is not Unix seconds", epoch)
		}
		created = time.Unix(s, 0).UTC()
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t, err := images.Build(ctx, images.Options{RepoRoot: root, OutDir: out, Platform: platform, Created: created})
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s)\nwrote %s (%s)\n", t.S3Get, images.S3GetRef, t.Pause, images.PauseRef)
	return nil
}
