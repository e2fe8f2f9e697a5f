// Command pause is PID 1 of a Pod sandbox on the e2e tier's real node. The
// container runtime starts a sandbox's first process to hold the Pod's
// network, IPC and UTS namespaces, which the Pod's containers then join;
// building that process from source here (with internal/image) means the
// node needs no registry and no prebuilt pause image.
//
// It waits for SIGINT or SIGTERM, which the runtime sends to stop the
// sandbox, and exits 0. Unlike the upstream pause it reaps no zombies: the
// e2e Pods do not share a PID namespace, so no other process's children
// are left to it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Handled, so that stopping the sandbox is a clean exit 0 rather than
	// Go's default death by the signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	fmt.Fprintln(os.Stderr, "pause: waiting for SIGINT or SIGTERM")
	s := <-sigs
	fmt.Fprintf(os.Stderr, "pause: %s, exiting\n", s)
}
