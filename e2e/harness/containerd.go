package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Containerd is containerd 2.x with the CRI plugin, runc and the CNI
// bridge, its root, state and socket in the node's directory.
type Containerd struct {
	*Process
	// Socket is the CRI and containerd API socket.
	Socket string

	dir, ctr string
}

// runcPath is Debian's runc.
const runcPath = "/usr/sbin/runc"

func newContainerd(binDir, dir, logDir, pauseRef string, net *podNetwork) (*Containerd, error) {
	c := &Containerd{
		Socket: filepath.Join(dir, "containerd.sock"),
		dir:    dir,
		ctr:    filepath.Join(binDir, "ctr"),
	}
	for _, d := range []string{"root", "state", "tmp", "opt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o711); err != nil {
			return nil, fmt.Errorf("containerd %s dir: %w", d, err)
		}
	}
	if err := net.writeConfig(filepath.Join(dir, "cni", "net.d"), filepath.Join(dir, "cni", "ipam")); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig(dir, c.Socket, pauseRef)), 0o644); err != nil {
		return nil, fmt.Errorf("write containerd config: %w", err)
	}
	c.Process = &Process{
		Name: "containerd",
		Path: filepath.Join(binDir, "containerd"),
		Args: []string{"--config", cfg},
		// The shim is found by name on PATH, runc and iptables by path.
		Env:     []string{"PATH=" + binDir + ":/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=" + filepath.Join(dir, "tmp")},
		LogPath: filepath.Join(logDir, "containerd.log"),
	}
	return c, nil
}

// containerdConfig keeps every path containerd writes in dir, except the
// shims' sockets (/run/containerd/s, fixed in containerd) and the CNI
// result cache (/var/lib/cni, fixed in go-cni); the node tier removes
// those when it made them. restrict_oom_score_adj: root on these machines
// may lack CAP_SYS_RESOURCE, and runc fails to set a negative score.
func containerdConfig(dir, socket, pauseRef string) string {
	q := strconv.Quote
	return `version = 3
root = ` + q(filepath.Join(dir, "root")) + `
state = ` + q(filepath.Join(dir, "state")) + `
temp = ` + q(filepath.Join(dir, "tmp")) + `
imports = []
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.image-verifier.v1.bindir",
]

[grpc]
  address = ` + q(socket) + `

[ttrpc]
  address = ` + q(socket+".ttrpc") + `

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ` + q(filepath.Join(dir, "opt")) + `

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = ` + q(pauseRef) + `

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [` + q(cniBinDir) + `]
    conf_dir = ` + q(filepath.Join(dir, "cni", "net.d")) + `
    max_conf_num = 1
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = ` + q(runcPath) + `
        Root = ` + q(filepath.Join(dir, "runc")) + `
        SystemdCgroup = false
`
}

// Start starts containerd and waits until ctr reaches it.
func (c *Containerd) Start(ctx context.Context) error {
	return c.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 60*time.Second, "containerd", c.Process, func(ctx context.Context) error {
			_, err := c.Ctr(ctx, "version")
			return err
		})
	})
}

// Ctr runs ctr against this containerd in the k8s.io namespace (the CRI's).
func (c *Containerd) Ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.Socket, "--namespace", "k8s.io"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, tail(out.String(), 10))
	}
	return out.String(), nil
}

// Import imports a docker-archive or OCI tarball.
func (c *Containerd) Import(ctx context.Context, tarball string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err := c.Ctr(ctx, "images", "import", "--local", tarball)
	return err
}

// removeTasks kills and deletes whatever tasks the kubelet left.
func (c *Containerd) removeTasks(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.Ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		_, _ = c.Ctr(ctx, "tasks", "kill", "-s", "SIGKILL", id)
		_, _ = c.Ctr(ctx, "tasks", "delete", "-f", id)
	}
}

// shimPIDs are the containerd-shim-runc-v2 processes serving this
// containerd: shims leave containerd's process tree, so a stopped
// containerd leaves them running.
func (c *Containerd) shimPIDs() []int {
	var pids []int
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == c.Socket {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killShims SIGKILLs this containerd's shims and waits (bounded) for them
// to go.
func (c *Containerd) killShims() {
	pids := c.shimPIDs()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.shimPIDs()) > 0 && time.Now().Before(deadline) {
		sleepBriefly()
	}
}
