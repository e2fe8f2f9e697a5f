// Command imagebuild builds the project's container images without a
// container engine: a static binary on an empty image, for each platform of
// one image index, written as an OCI layout, a docker-save tarball or
// pushed to a registry. Its defaults build the product image; `make image`
// and `make e2e-images` run it. See internal/image.
//
//	imagebuild --binary linux/amd64=bin/x-amd64 --binary linux/arm64=bin/x-arm64 \
//	  --version v0.1.0 --source-date-epoch "$(git log -1 --format=%ct)" \
//	  --oci-dir bin/image/oci --tarball bin/image/irsa-webhook.tar
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("imagebuild", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := image.NewConfig()
	cfg.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "imagebuild:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imagebuild: unexpected arguments %q: everything is a flag\n", fs.Args())
		return 2
	}
	if err := cfg.Run(ctx, stdout); err != nil {
		fmt.Fprintln(stderr, "imagebuild:", err)
		return 1
	}
	return 0
}
