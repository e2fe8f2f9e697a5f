package serving

import (
	"net"
	"syscall"
)

// pendingInput reports whether bytes wait in c's receive queue that no
// read has taken yet. It does not take c's read lock (a read may be
// blocked on it); MSG_PEEK leaves the bytes for that read.
func pendingInput(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var buf [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
