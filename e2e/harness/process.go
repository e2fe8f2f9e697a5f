package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout bounds a graceful stop; after it the process is killed.
const stopTimeout = 15 * time.Second

// Process is one long-running child process with its output appended to
// LogPath. It can be stopped and started again with the same or changed
// Args and Env (for restarts in fault tests).
type Process struct {
	Name    string
	Path    string
	Args    []string
	Env     []string // the whole environment; nil means none
	Dir     string
	LogPath string

	// Ports are the TCP ports on 127.0.0.1 the process listens on, when
	// the harness chose them (listenOn).
	Ports []int
	// UsePorts, when set, points the process at the given ports: it
	// rewrites Args and whatever its owner derives from the ports (URLs,
	// clients, config files). It lets the first start move: when the
	// process exits before it is ready because an address is in use,
	// startAndWait gives it fresh ports and starts it again. Leave it nil
	// when others learn the ports before the process starts (an issuer
	// URL). Once the process has been ready its ports stay, so that a
	// restart comes back where its clients look for it.
	UsePorts func(ports []int) error

	held    []net.Listener // keep the reserved Ports free until Start
	settled bool           // was ready once: Ports no longer move

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
	logOffset int64 // size of the log before the last start
}

// bindAttempts bounds how many sets of ports one startAndWait tries.
const bindAttempts = 5

// listenOn reserves n ports for the process (see ports.go), keeps them
// held until the next Start, and passes them to UsePorts.
func (p *Process) listenOn(n int) error {
	ports, held, err := reservePorts(n)
	if err != nil {
		return fmt.Errorf("ports for %s: %w", p.Name, err)
	}
	if p.UsePorts != nil {
		if err := p.UsePorts(ports); err != nil {
			closeAll(held)
			return fmt.Errorf("ports for %s: %w", p.Name, err)
		}
	}
	p.mu.Lock()
	closeAll(p.held)
	p.Ports, p.held = ports, held
	p.mu.Unlock()
	return nil
}

// startAndWait starts the process and runs wait, a readiness wait that
// returns early when the process exits (as waitFor does). When the process
// exited because one of its addresses was in use and its ports may still
// move (UsePorts is set and it was never ready), it moves to fresh ports
// and starts again, at most bindAttempts times in all; its log records
// every move. Only one goroutine may start a process.
func (p *Process) startAndWait(ctx context.Context, wait func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		if err := p.Start(); err != nil {
			return err
		}
		err := wait(ctx)
		if err == nil {
			p.settled = true
			return nil
		}
		if p.Running() || !p.addrInUse() {
			return err
		}
		if p.UsePorts == nil || p.settled {
			return fmt.Errorf("%w\n(an address of %s was in use; its ports %v cannot move, since its clients already know them)", err, p.Name, p.Ports)
		}
		if attempt == bindAttempts {
			return fmt.Errorf("%s found an address in use on %d sets of fresh ports in a row (last %v): %w", p.Name, attempt, p.Ports, err)
		}
		old := p.Ports
		if err := p.listenOn(len(old)); err != nil {
			return err
		}
		p.note("an address of ports %v was in use; starting again on ports %v", old, p.Ports)
	}
}

// addrInUse reports whether the log since the last start says that an
// address was in use: Go programs print the kernel's EADDRINUSE text,
// MinIO its own.
func (p *Process) addrInUse() bool {
	p.mu.Lock()
	offset := p.logOffset
	p.mu.Unlock()
	f, err := os.Open(p.LogPath)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
	if err != nil {
		return false
	}
	log := string(data)
	return strings.Contains(log, "address already in use") || strings.Contains(log, "port is already in use")
}

// note appends one harness line to the process's log.
func (p *Process) note(format string, args ...any) {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "---- %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// Start launches the process. It is an error to start a running process.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("start %s: already running as pid %d", p.Name, p.cmd.Process.Pid)
		}
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: open log: %w", p.Name, err)
	}
	var offset int64
	if st, err := logf.Stat(); err == nil {
		offset = st.Size()
	}
	fmt.Fprintf(logf, "---- %s: starting %s %q\n", time.Now().UTC().Format(time.RFC3339Nano), p.Path, p.Args)
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = p.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	// Let go of the reserved ports only now, as late as can be.
	closeAll(p.held)
	p.held = nil
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.logOffset = cmd, done, nil, offset
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "---- %s: exited: %v\n", time.Now().UTC().Format(time.RFC3339Nano), err)
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID is the process id of the running process, or 0 when it is not
// running (benchmarks read its CPU time and memory from /proc).
func (p *Process) PID() int {
	if !p.Running() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// exitErr returns a non-nil error once the process has exited.
func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s was never started", p.Name)
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.Name, p.err, p.LogTail(30))
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits for the exit, killing the process after
// stopTimeout. Stopping a stopped process does nothing.
func (p *Process) Stop() error {
	return p.signalAndWait(syscall.SIGTERM, stopTimeout)
}

// Kill stops the process with SIGKILL (a crash, not a shutdown).
func (p *Process) Kill() error {
	return p.signalAndWait(syscall.SIGKILL, stopTimeout)
}

func (p *Process) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	closeAll(p.held) // a process that never started gives its ports back
	p.held = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("stop %s: did not exit within %s of %s, killed", p.Name, timeout, sig)
}

// Restart stops the process and starts it again with its current Args/Env.
func (p *Process) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start()
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(string(data), n)
}

// waitFor polls cond every interval until it returns nil, the timeout runs
// out, ctx ends, or (when p is not nil) the process exits.
func waitFor(ctx context.Context, timeout time.Duration, what string, p *Process, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 50 * time.Millisecond
	var last error
	for {
		// An exited process's port may be someone else's: do not probe it.
		if p != nil {
			if err := p.exitErr(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		last = cond(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: gave up after %s: %w", what, timeout, last)
		case <-time.After(interval):
		}
		if interval < 500*time.Millisecond {
			interval *= 2
		}
	}
}

// WaitFor polls cond until it returns nil or the timeout runs out; it is
// what tests use to wait on a condition instead of sleeping.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) error) error {
	return waitFor(ctx, timeout, what, nil, cond)
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
