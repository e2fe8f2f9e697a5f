package harness

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Port choice.
//
// Every server the harness starts listens on a loopback TCP port that the
// harness picks and passes on the command line: none of them can be handed
// an open socket. Between the pick and the child's bind, nothing else may
// take the port. Four rules see to that:
//
//  1. Ports come from outside the kernel's ephemeral range
//     (net.ipv4.ip_local_port_range). Every outgoing connection on the
//     machine takes its local port from that range, so no connection can
//     ever take one of ours.
//  2. A port is claimed for the life of the test process, on Linux by
//     binding an abstract unix socket named after it. The harness in another
//     test process (the e2e packages run in parallel) skips claimed ports,
//     also while a part is stopped before a restart on the same port. Each
//     process starts its search at a random offset, so parallel processes
//     rarely even try the same ports.
//  3. A candidate must be free now: the harness listens on it, and keeps
//     that listener until the process that uses the port starts (see
//     Process.Start), so the port cannot be taken while other parts start.
//  4. What remains is an unrelated program binding that very port in the
//     moment between the release and the child's bind. For that, a first
//     start that fails because an address is in use is retried on fresh
//     ports (see Process.UsePorts).

// minPort is the lowest port the harness uses: below it are the well-known
// ports and the fixed ports of many development servers.
const minPort = 10000

// defaultEphemeral is assumed when the kernel's range cannot be read: it
// covers both Linux's default (32768-60999) and IANA's (49152-65535).
var defaultEphemeral = portRange{lo: 32768, hi: 65535}

// ephemeralRangeFile is where Linux keeps the ephemeral port range; IPv6
// uses the same one.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// claimPrefix names the abstract unix sockets that claim ports for one
// test process. It is the same in every checkout, so that parallel runs of
// different checkouts also stay apart.
const claimPrefix = "irsa-webhook-e2e/port/"

// abstractSockets says whether claims can use Linux's abstract unix socket
// names, which belong to no file and vanish with their process.
const abstractSockets = runtime.GOOS == "linux"

// portRange is an inclusive range of TCP ports.
type portRange struct{ lo, hi int }

func (r portRange) size() int { return r.hi - r.lo + 1 }

func (r portRange) String() string { return fmt.Sprintf("%d-%d", r.lo, r.hi) }

// parsePortRange parses the contents of ip_local_port_range: two ports
// separated by white space, the first not above the second.
func parsePortRange(s string) (portRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return portRange{}, fmt.Errorf("parse port range %q: want two ports", s)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		return portRange{}, fmt.Errorf("parse port range %q: %w", s, err)
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return portRange{}, fmt.Errorf("parse port range %q: want 1 <= low <= high <= 65535", s)
	}
	return portRange{lo: lo, hi: hi}, nil
}

// ephemeralRange is the kernel's ephemeral port range, or defaultEphemeral
// when it cannot be read (not Linux, or no /proc).
func ephemeralRange() portRange {
	data, err := os.ReadFile(ephemeralRangeFile)
	if err != nil {
		return defaultEphemeral
	}
	r, err := parsePortRange(string(data))
	if err != nil {
		return defaultEphemeral
	}
	return r
}

// portsOutside is every port from minPort up that is not in eph, as at
// most two ranges.
func portsOutside(eph portRange) []portRange {
	var pool []portRange
	if eph.lo > minPort {
		pool = append(pool, portRange{lo: minPort, hi: eph.lo - 1})
	}
	if eph.hi < 65535 {
		pool = append(pool, portRange{lo: max(eph.hi+1, minPort), hi: 65535})
	}
	return pool
}

// portChooser hands out ports from its pool, each at most once per
// process: it walks the pool from a random offset and takes the next port
// that it can claim and listen on.
type portChooser struct {
	pool   []portRange
	prefix string // of the claim sockets

	mu     sync.Mutex
	size   int
	next   int            // index into the pool of the next candidate
	claims []io.Closer    // held for the life of the process
	taken  map[int]bool   // ports this process claimed (for claimPort's fallback)
	claim  func(int) bool // claimPort, or a test's replacement
}

func newPortChooser(pool []portRange, prefix string) *portChooser {
	c := &portChooser{pool: pool, prefix: prefix, taken: map[int]bool{}}
	for _, r := range pool {
		c.size += r.size()
	}
	if c.size > 0 {
		c.next = rand.IntN(c.size)
	}
	c.claim = c.claimPort
	return c
}

// nth is the port at index i of the pool.
func (c *portChooser) nth(i int) int {
	for _, r := range c.pool {
		if i < r.size() {
			return r.lo + i
		}
		i -= r.size()
	}
	panic("port index out of range") // callers take i modulo size
}

// reserve returns n distinct ports, each claimed for this process and held
// by an open listener on 127.0.0.1; the caller closes the listeners when
// the ports' user is about to bind them. It tries every port of the pool at
// most once.
func (c *portChooser) reserve(n int) ([]int, []net.Listener, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ports := make([]int, 0, n)
	var held []net.Listener
	for tried := 0; tried < c.size && len(ports) < n; tried++ {
		port := c.nth(c.next)
		c.next = (c.next + 1) % c.size
		if !c.claim(port) {
			continue // another test process has it, or we do
		}
		l, err := net.Listen("tcp", hostPort(port))
		if err != nil {
			continue // in use by something else; stays claimed, never tried again
		}
		ports = append(ports, port)
		held = append(held, l)
	}
	if len(ports) < n {
		closeAll(held)
		return nil, nil, fmt.Errorf("find %d free ports on 127.0.0.1 outside the ephemeral range (tried %v): only %d free; "+
			"free some ports or narrow net.ipv4.ip_local_port_range", n, c.pool, len(ports))
	}
	return ports, held, nil
}

// claimPort claims port for this process, or reports false when this or
// another process already did. On Linux the claim is an abstract unix
// socket, which the kernel releases when the process dies, however it dies.
// Elsewhere claims only keep this process from using a port twice.
func (c *portChooser) claimPort(port int) bool {
	if c.taken[port] {
		return false
	}
	if abstractSockets {
		s, err := net.ListenPacket("unixgram", "@"+c.prefix+strconv.Itoa(port))
		if err != nil {
			return false
		}
		c.claims = append(c.claims, s)
	}
	c.taken[port] = true
	return true
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// processPorts is the process-wide chooser, made on first use.
var processPorts = sync.OnceValue(func() *portChooser {
	return newPortChooser(portsOutside(ephemeralRange()), claimPrefix)
})

// reservePorts reserves n ports with the process-wide chooser; see
// portChooser.reserve.
func reservePorts(n int) ([]int, []net.Listener, error) {
	return processPorts().reserve(n)
}

// FreePort returns a port on 127.0.0.1 outside the ephemeral range, free
// now and claimed for this test process, so that neither an outgoing
// connection nor another test process's harness can take it.
func FreePort() (int, error) {
	p, held, err := reservePorts(1)
	if err != nil {
		return 0, err
	}
	closeAll(held)
	return p[0], nil
}
