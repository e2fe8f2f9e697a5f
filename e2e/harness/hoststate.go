package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// HostState is what a node tier may change on the machine, as seen at one
// moment: the node tier records it before it starts and puts the machine
// back to it when it stops, and tests compare two of them.
type HostState struct {
	// Sysctls are the values of the kernel settings the kubelet and the
	// CNI bridge plugin write, by /proc/sys path (missing ones are left out).
	Sysctls map[string]string
	// Chains are the user-defined iptables and ip6tables chains, as
	// "iptables/filter/NAME". (A table that iptables-nft made for them
	// stays, empty, with only its built-in chains.)
	Chains []string
	// Mounts are the mount points under Watched paths and under the Dirs.
	Mounts []string
	// Netns are the entries of /run/netns that containerd's CNI names
	// (cni-*); other programs' namespaces are theirs.
	Netns []string
	// Links are the network interfaces named like a node tier's bridge.
	Links []string
	// Cgroups are the cgroup directories a kubelet makes (kubepods) in
	// every hierarchy.
	Cgroups []string
	// Paths are the Watched paths that exist.
	Paths []string
	// ContainerLogs are the entries of /var/log/containers.
	ContainerLogs []string
}

// nodeSysctls are written by the kubelet (setupKernelTunables), by the
// bridge plugin and the node tier (forwarding), and by kube-proxy unless
// told not to (route_localnet, conntrack: recorded all the same).
var nodeSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward",
	"net/ipv6/conf/all/forwarding",
	"net/ipv4/conf/all/route_localnet",
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
}

// watchedPaths are the host paths a kubelet or containerd creates whatever
// their configured directories: the node tier removes the ones that were
// not there before. /run/netns is not among them: containerd keeps the
// Pods' namespaces in its state directory, and other programs' namespaces
// there are theirs (only cni-* entries count, see Netns).
var watchedPaths = []string{
	"/var/lib/kubelet",
	"/var/log/containers",
	"/var/log/pods",
	"/var/lib/cni",
	"/run/containerd",
	"/opt/containerd",
	"/etc/cni",
}

// cgroupNames are the top-level cgroups a kubelet with the cgroupfs driver
// creates in each hierarchy.
var cgroupNames = []string{"kubepods"}

// SnapshotHost records the host state; dirs are extra directories (a
// stack's) whose mounts count too.
func SnapshotHost(dirs ...string) (*HostState, error) {
	h := &HostState{Sysctls: map[string]string{}}
	for _, k := range nodeSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			h.Sysctls[k] = strings.TrimSpace(string(v))
		}
	}
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		chains, err := iptablesChains(tool)
		if err != nil {
			errs = append(errs, err)
		}
		h.Chains = append(h.Chains, chains...)
	}
	mounts, err := mountsUnder(append(slices.Clone(watchedPaths), dirs...))
	if err != nil {
		errs = append(errs, err)
	}
	h.Mounts = mounts
	for _, n := range dirEntries("/run/netns") {
		if strings.HasPrefix(n, "cni-") {
			h.Netns = append(h.Netns, n)
		}
	}
	h.ContainerLogs = dirEntries("/var/log/containers")
	ifaces, err := os.ReadDir("/sys/class/net")
	if err != nil {
		errs = append(errs, fmt.Errorf("list network interfaces: %w", err))
	}
	for _, i := range ifaces {
		// A Pod's veth goes with its network namespace, and the host's
		// other veths are not ours to judge.
		if strings.HasPrefix(i.Name(), bridgePrefix) {
			h.Links = append(h.Links, i.Name())
		}
	}
	h.Cgroups = kubeCgroups()
	for _, p := range watchedPaths {
		if _, err := os.Lstat(p); err == nil {
			h.Paths = append(h.Paths, p)
		}
	}
	return h, errors.Join(errs...)
}

func dirEntries(dir string) []string {
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// kubeCgroups lists every cgroupNames directory in every hierarchy under
// /sys/fs/cgroup (cgroup v1, v2 and the hybrid layout).
func kubeCgroups() []string {
	var out []string
	roots := []string{"/sys/fs/cgroup"}
	if es, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range es {
			if e.IsDir() {
				roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
			}
		}
	}
	for _, r := range roots {
		for _, n := range cgroupNames {
			if fi, err := os.Stat(filepath.Join(r, n)); err == nil && fi.IsDir() {
				out = append(out, filepath.Join(r, n))
			}
		}
	}
	return out
}

// iptablesChains lists tool's user-defined chains of every table, as
// tool/table/chain.
func iptablesChains(tool string) ([]string, error) {
	out, err := exec.Command(tool + "-save").Output()
	if err != nil {
		return nil, fmt.Errorf("%s-save: %w", tool, err)
	}
	return parseChains(tool, out), nil
}

// parseChains reads the user-defined chains of iptables-save output.
func parseChains(tool string, save []byte) []string {
	var chains []string
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(save))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			// ":NAME POLICY [packets:bytes]"; a user-defined chain's
			// policy is "-".
			if f := strings.Fields(line[1:]); len(f) >= 2 && f[1] == "-" {
				chains = append(chains, tool+"/"+table+"/"+f[0])
			}
		}
	}
	sort.Strings(chains)
	return chains
}

// mountsUnder lists the mount points at or under any of roots, deepest
// last, as /proc/self/mountinfo has them (unescaped).
func mountsUnder(roots []string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, r := range roots {
			if r != "" && (mp == r || strings.HasPrefix(mp, strings.TrimSuffix(r, "/")+"/")) {
				out = append(out, mp)
				break
			}
		}
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	isOctal := func(c byte) bool { return c >= '0' && c <= '7' }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// restoreHost puts back what changed since before: it unmounts new mounts
// under dirs and the watched paths, deletes new chains (and the rules that
// jump to them), new links, new cgroups (killing what still runs in them),
// new watched paths and container log links, and writes back changed
// sysctls. It does everything it can and reports every failure.
func restoreHost(before *HostState, dirs ...string) error {
	var errs []error
	now, err := SnapshotHost(dirs...)
	if err != nil {
		errs = append(errs, err)
	}
	// Processes first: a cgroup's last processes hold mounts and netns.
	for _, cg := range added(before.Cgroups, now.Cgroups) {
		killCgroup(cg)
	}
	mounts := added(before.Mounts, now.Mounts)
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	for _, n := range added(before.Netns, now.Netns) {
		p := filepath.Join("/run/netns", n)
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove netns %s: %w", n, err))
		}
	}
	for _, l := range added(before.Links, now.Links) {
		if out, err := exec.Command("ip", "link", "delete", l).CombinedOutput(); err != nil && linkExists(l) {
			errs = append(errs, fmt.Errorf("delete link %s: %w: %s", l, err, bytes.TrimSpace(out)))
		}
	}
	if err := deleteChains(added(before.Chains, now.Chains)); err != nil {
		errs = append(errs, err)
	}
	for _, cg := range added(before.Cgroups, now.Cgroups) {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range added(before.ContainerLogs, now.ContainerLogs) {
		if err := os.Remove(filepath.Join("/var/log/containers", l)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove container log link %s: %w", l, err))
		}
	}
	// go-cni caches each attachment's result under a name that starts
	// with the network's, which is the node tier's own.
	results, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", cniNetwork+"-*"))
	for _, r := range results {
		if err := os.Remove(r); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cni result %s: %w", r, err))
		}
	}
	for _, p := range added(before.Paths, now.Paths) {
		// Anything still mounted below it was reported above; RemoveAll
		// does not cross into a mount it cannot remove.
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	for k, v := range before.Sysctls {
		if now.Sysctls[k] != v {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
			}
		}
	}
	return errors.Join(errs...)
}

// added is what b has and a has not.
func added(a, b []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// killCgroup SIGKILLs every process left in cg and its children: the
// container processes of Pods the kubelet did not stop.
func killCgroup(cg string) {
	_ = filepath.WalkDir(cg, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// removeCgroup removes cg and its children, deepest first (cgroupfs
// directories go with rmdir only).
func removeCgroup(cg string) error {
	var dirs []string
	_ = filepath.WalkDir(cg, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		// A killed process leaves its cgroup a moment later.
		for try := 0; try < 50; try++ {
			if last = syscall.Rmdir(dirs[i]); last == nil || errors.Is(last, syscall.ENOENT) {
				last = nil
				break
			}
			sleepBriefly()
		}
		if last != nil {
			return fmt.Errorf("remove cgroup %s: %w", dirs[i], last)
		}
	}
	return nil
}

// deleteChains deletes the given tool/table/chain chains: first every rule
// that jumps to one of them, then their rules, then the chains.
func deleteChains(chains []string) error {
	if len(chains) == 0 {
		return nil
	}
	type tt struct{ tool, table string }
	byTable := map[tt][]string{}
	for _, c := range chains {
		p := strings.SplitN(c, "/", 3)
		byTable[tt{p[0], p[1]}] = append(byTable[tt{p[0], p[1]}], p[2])
	}
	var errs []error
	for k, names := range byTable {
		out, err := exec.Command(k.tool+"-save", "-t", k.table).Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-save -t %s: %w", k.tool, k.table, err))
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "-A ") {
				continue
			}
			args := splitRule(line)
			if len(args) < 2 || slices.Contains(names, args[1]) || !jumpsTo(args, names) {
				continue
			}
			args[0] = "-D"
			if out, err := exec.Command(k.tool, append([]string{"-w", "-t", k.table}, args...)...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s %s: %w: %s", k.tool, k.table, strings.Join(args, " "), err, bytes.TrimSpace(out)))
			}
		}
		for _, n := range names {
			_ = exec.Command(k.tool, "-w", "-t", k.table, "-F", n).Run()
		}
		for _, n := range names {
			if out, err := exec.Command(k.tool, "-w", "-t", k.table, "-X", n).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -X %s: %w: %s", k.tool, k.table, n, err, bytes.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

func jumpsTo(args, chains []string) bool {
	for i := 0; i+1 < len(args); i++ {
		if (args[i] == "-j" || args[i] == "-g") && slices.Contains(chains, args[i+1]) {
			return true
		}
	}
	return false
}

// splitRule splits an iptables-save rule into arguments, keeping double
// quoted words (comments) whole.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// sleepBriefly paces a bounded retry of a host operation.
func sleepBriefly() { time.Sleep(20 * time.Millisecond) }
