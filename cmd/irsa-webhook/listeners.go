package main

import (
	"context"
	"net"
)

// testListeners are listeners a test bound to 127.0.0.1:0 and hands a
// command through its context, served instead of the address flags: a
// port found free and closed again can be taken by another test before
// the command listens on it. Users never set them; a nil field means the
// flag's address.
type testListeners struct {
	main      net.Listener // discovery serve's --port
	discovery net.Listener // serve's --discovery-port
	health    net.Listener // --health-probe-bind-address of the commands without a manager
	// metricsAddr, when set, is sent the address the metrics server bound.
	// controller-runtime's metrics server takes no listener, so a test
	// gives it port 0 and learns the kernel's choice here.
	metricsAddr chan<- string
}

type testListenersKey struct{}

func withTestListeners(ctx context.Context, l *testListeners) context.Context {
	return context.WithValue(ctx, testListenersKey{}, l)
}

// testListenersFrom is never nil: without any, every field is nil.
func testListenersFrom(ctx context.Context) *testListeners {
	if l, ok := ctx.Value(testListenersKey{}).(*testListeners); ok && l != nil {
		return l
	}
	return &testListeners{}
}
