// Command irsa-webhook gives Kubernetes pods short-lived AWS credentials
// through IAM roles for service accounts: a mutating admission webhook, the
// OIDC discovery companion AWS needs, and the admin's tools around them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain runs the command line args and returns the exit status. SIGTERM
// and SIGINT are handled here, once for every command: the first cancels
// the command's context (the long-running ones drain and return), a second
// one ends the process at once.
func runMain(args []string, stdout, stderr io.Writer) int {
	return runMainContext(context.Background(), args, stdout, stderr)
}

// runMainContext is runMain under parent (a test's, carrying listeners).
func runMainContext(parent context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first signal, the default action again
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
