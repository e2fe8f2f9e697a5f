package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Versions of the real parts. e2e/build/kube/go.mod pins the same
// Kubernetes and etcd versions; MinIO is installed by module path.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
	MinIOVersion      = "v0.0.0-20260212201848-7aac2a2c5b7c"
	// ContainerdVersion is what e2e/build/containerd/go.mod pins.
	ContainerdVersion = "v2.4.2"
	// CoreDNSVersion is what e2e/build/coredns/go.mod pins.
	CoreDNSVersion = "v1.15.0"
	minioModule    = "github.com/minio/minio"
	productModule  = "github.com/irsa-webhook/irsa-webhook"
)

// Binaries are the executables a Stack runs. The control plane, MinIO and
// the node tier's parts are cached across runs in BinDir; irsa-webhook,
// s3get and the node's images are built from this checkout for every run,
// so a test always exercises the code under test.
type Binaries struct {
	KubeAPIServer string
	Etcd          string
	MinIO         string
	IrsaWebhook   string
	S3Get         string

	// Node holds the node tier's binaries; nil unless BuildOptions.Node.
	Node *NodeBinaries
}

// NodeBinaries are what a node tier (Options.Node) runs besides the
// control plane.
type NodeBinaries struct {
	Kubelet               string
	KubeControllerManager string
	KubeScheduler         string
	KubeProxy             string
	// CoreDNS is the cluster DNS, built from e2e/build/coredns.
	CoreDNS string
	// ContainerdDir holds containerd, containerd-shim-runc-v2 and ctr:
	// containerd finds its shim by name on PATH.
	ContainerdDir string
	// Images are the s3get and pause images, as tarballs to import.
	Images *NodeImages
}

// NodeImages are the node tier's two local images: the workload and the
// sandbox. BuildOptions.NodeImages makes them (e2e/images does, which the
// harness cannot import: that package's tests use the harness).
type NodeImages struct {
	S3GetRef, S3GetTarball string
	PauseRef, PauseTarball string
	// WebhookRef and WebhookTarball are the product image built from this
	// checkout (as make image builds it), for an installed webhook.
	WebhookRef, WebhookTarball string
}

// BinDir is where the control plane and MinIO binaries are cached:
// $IRSA_E2E_BIN_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/irsa-webhook/bin.
func BinDir() (string, error) {
	if d := os.Getenv("IRSA_E2E_BIN_DIR"); d != "" {
		return d, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the binary cache: set IRSA_E2E_BIN_DIR or HOME: %w", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "irsa-webhook", "bin"), nil
}

// RepoRoot finds the checkout's root (the directory whose go.mod declares the
// product module) by walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(data) == productModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod for " + productModule + " above the working directory; run from inside the checkout")
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// BuildOptions say where to build from and to, and where progress goes.
type BuildOptions struct {
	// RepoRoot is the checkout; default RepoRoot().
	RepoRoot string
	// CacheDir holds the versioned control plane and MinIO binaries;
	// default BinDir().
	CacheDir string
	// OutDir receives this run's irsa-webhook and s3get binaries.
	OutDir string
	// Progress receives one line per phase with its duration; may be nil.
	Progress io.Writer
	// Node also builds the node tier: kubelet, kube-controller-manager,
	// kube-scheduler, containerd, and (with NodeImages) the s3get and pause
	// images. Runs without a node do not pay for them.
	Node bool
	// NodeImages builds the node's images into outDir; required with Node.
	NodeImages func(ctx context.Context, repoRoot, outDir string) (*NodeImages, error)
}

// Build makes every binary a Stack needs, in parallel: the cached ones only
// when missing (a cold build of kube-apiserver takes several minutes), this
// checkout's ones always. Each phase prints its duration to Progress.
func Build(ctx context.Context, o BuildOptions) (*Binaries, error) {
	if o.OutDir == "" {
		return nil, errors.New("build: OutDir is required")
	}
	if o.Node && o.NodeImages == nil {
		return nil, errors.New("build: Node needs NodeImages")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create build output %s: %w", o.OutDir, err)
	}
	p := &progress{w: o.Progress}
	b := cachedBinaries(o)
	b.IrsaWebhook = filepath.Join(o.OutDir, "irsa-webhook")
	b.S3Get = filepath.Join(o.OutDir, "s3get")
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	addCachedBuilds(ctx, g, p, o, b)
	g.Go(func() error {
		return p.always("irsa-webhook (this checkout)", func() error {
			return goCmd(ctx, o.RepoRoot, nil, "build", "-o", b.IrsaWebhook, "./cmd/irsa-webhook")
		})
	})
	g.Go(func() error {
		return p.always("s3get (this checkout)", func() error {
			return goCmd(ctx, filepath.Join(o.RepoRoot, "e2e"), nil, "build", "-o", b.S3Get, "./cmd/s3get")
		})
	})
	if o.Node {
		g.Go(func() error {
			return p.always("s3get, pause and irsa-webhook images (this checkout)", func() (err error) {
				b.Node.Images, err = o.NodeImages(ctx, o.RepoRoot, filepath.Join(o.OutDir, "images"))
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p.printf("build: all binaries ready in %s", since(start))
	return b, nil
}

// BuildCached builds every cached part of the e2e tier that is missing:
// what Build caches (the node tier's too with o.Node), SPIRE and helm.
// make e2e runs it before the test packages, which then run in parallel
// on warm caches: left to their TestMains, the cold builds of several
// packages ran at once, beside other packages' tests, and a package that
// waited on another's lock spent its own build bound waiting. Two builds
// run at a time (each go build uses every core itself), the Kubernetes
// one, the longest, first.
func BuildCached(ctx context.Context, o BuildOptions) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	p := &progress{w: o.Progress}
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	addCachedBuilds(ctx, g, p, o, cachedBinaries(o))
	g.Go(func() error {
		_, err := BuildSPIRE(ctx, o)
		return err
	})
	g.Go(func() error {
		_, err := BuildHelm(ctx, o.CacheDir, o.Progress)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	p.printf("build: every cached binary ready in %s", since(start))
	return nil
}

// withDefaults fills in RepoRoot and CacheDir and creates the cache.
func (o BuildOptions) withDefaults() (BuildOptions, error) {
	var err error
	if o.RepoRoot == "" {
		if o.RepoRoot, err = RepoRoot(); err != nil {
			return o, err
		}
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = BinDir(); err != nil {
			return o, err
		}
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return o, fmt.Errorf("create binary cache %s: %w", o.CacheDir, err)
	}
	return o, nil
}

// cachedBinaries says where the cached parts of b land (the node tier's
// only with o.Node).
func cachedBinaries(o BuildOptions) *Binaries {
	b := &Binaries{
		KubeAPIServer: filepath.Join(o.CacheDir, "kube-apiserver-"+KubernetesVersion),
		Etcd:          filepath.Join(o.CacheDir, "etcd-"+EtcdVersion),
		MinIO:         filepath.Join(o.CacheDir, "minio-"+MinIOVersion),
	}
	if o.Node {
		b.Node = &NodeBinaries{
			Kubelet:               filepath.Join(o.CacheDir, "kubelet-"+KubernetesVersion),
			KubeControllerManager: filepath.Join(o.CacheDir, "kube-controller-manager-"+KubernetesVersion),
			KubeScheduler:         filepath.Join(o.CacheDir, "kube-scheduler-"+KubernetesVersion),
			KubeProxy:             filepath.Join(o.CacheDir, "kube-proxy-"+KubernetesVersion),
			CoreDNS:               filepath.Join(o.CacheDir, "coredns-"+CoreDNSVersion),
			ContainerdDir:         filepath.Join(o.CacheDir, "containerd-"+ContainerdVersion),
		}
	}
	return b
}

// addCachedBuilds adds to g the builds of b's cached parts that are
// missing. Every command of e2e/build/kube that b needs is built by one go
// build: concurrent go builds each compile the packages they share (most
// of Kubernetes) until one lands in the Go build cache, which doubled a
// cold CI run.
func addCachedBuilds(ctx context.Context, g *errgroup.Group, p *progress, o BuildOptions, b *Binaries) {
	kubeModule := filepath.Join(o.RepoRoot, "e2e", "build", "kube")
	kube := []togetherBinary{
		{"kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", b.KubeAPIServer},
		{"etcd", "./etcd", b.Etcd},
	}
	if n := b.Node; n != nil {
		kube = append(kube,
			togetherBinary{"kubelet", "k8s.io/kubernetes/cmd/kubelet", n.Kubelet},
			togetherBinary{"kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager", n.KubeControllerManager},
			togetherBinary{"kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler", n.KubeScheduler},
			togetherBinary{"kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy", n.KubeProxy},
		)
	}
	// etcd does not link component-base: the -X flags do not touch it.
	versionFlags := "-s -w -X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
		" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
	g.Go(func() error {
		lock := filepath.Join(o.CacheDir, "kubernetes-"+KubernetesVersion+".lock")
		return p.cachedTogether("Kubernetes "+KubernetesVersion+" and etcd "+EtcdVersion, lock, kube, func(outDir string, pkgs []string) error {
			args := append([]string{"build", "-trimpath", "-ldflags", versionFlags, "-o", outDir + "/"}, pkgs...)
			return goCmd(ctx, kubeModule, nil, args...)
		})
	})
	g.Go(func() error {
		return p.cached("minio "+MinIOVersion, b.MinIO, func(out string) error {
			// go install pkg@version builds outside any module, so MinIO's
			// dependencies never touch this repository's go.mod files.
			gobin, err := os.MkdirTemp(filepath.Dir(out), ".minio-gobin-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(gobin)
			if err := goCmd(ctx, gobin, []string{"GOBIN=" + gobin}, "install", "-trimpath", "-ldflags", "-s -w", minioModule+"@"+MinIOVersion); err != nil {
				return err
			}
			return os.Rename(filepath.Join(gobin, "minio"), out)
		})
	})
	n := b.Node
	if n == nil {
		return
	}
	g.Go(func() error {
		// A directory, built whole and renamed into place like a binary.
		return p.cachedDir("containerd "+ContainerdVersion, n.ContainerdDir, "ctr", func(out string) error {
			mod := filepath.Join(o.RepoRoot, "e2e", "build", "containerd")
			flags := "-s -w -X github.com/containerd/containerd/v2/version.Version=" + ContainerdVersion
			args := []string{"build", "-trimpath", "-ldflags", flags, "-o", out + "/"}
			for _, c := range containerdCommands {
				args = append(args, "github.com/containerd/containerd/v2/cmd/"+c)
			}
			return goCmd(ctx, mod, []string{"CGO_ENABLED=0"}, args...)
		})
	})
	g.Go(func() error {
		return p.cached("coredns "+CoreDNSVersion, n.CoreDNS, func(out string) error {
			mod := filepath.Join(o.RepoRoot, "e2e", "build", "coredns")
			return goCmd(ctx, mod, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
		})
	})
}

// containerdCommands are built into NodeBinaries.ContainerdDir.
var containerdCommands = []string{"containerd", "containerd-shim-runc-v2", "ctr"}

type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// cached builds dest with build unless it exists. A lock file keeps two
// concurrent runs from building the same binary; the result is renamed into
// place so a half-written binary is never used.
func (p *progress) cached(what, dest string, build func(out string) error) error {
	return p.cachedAt(what, dest, func() bool { return isExecutable(dest) }, os.Remove, build)
}

// cachedDir is cached for a directory of binaries: it counts as built when
// it holds check.
func (p *progress) cachedDir(what, dest, check string, build func(out string) error) error {
	return p.cachedAt(what, dest, func() bool { return isExecutable(filepath.Join(dest, check)) }, os.RemoveAll, build)
}

// togetherBinary is one command of a cachedTogether build: the go build
// output named out, from package pkg, cached at dest.
type togetherBinary struct{ out, pkg, dest string }

// cachedTogether is cached for commands built by one go build: one lock
// file covers them all, and the missing ones are built in one command into
// a temporary directory, then renamed into place one by one.
func (p *progress) cachedTogether(what, lockPath string, bins []togetherBinary, build func(outDir string, pkgs []string) error) error {
	missing := func() (m []togetherBinary) {
		for _, b := range bins {
			if !isExecutable(b.dest) {
				m = append(m, b)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		p.printf("build: %s cached in %s", what, filepath.Dir(lockPath))
		return nil
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("build %s: lock: %w", what, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("build %s: lock: %w", what, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	todo := missing()
	if len(todo) == 0 {
		p.printf("build: %s built by another run, cached in %s", what, filepath.Dir(lockPath))
		return nil
	}
	var names, pkgs []string
	for _, b := range todo {
		names = append(names, b.out)
		pkgs = append(pkgs, b.pkg)
	}
	p.printf("build: %s: %s not cached, building them in one go build (many minutes on a cold machine)", what, strings.Join(names, ", "))
	start := time.Now()
	tmp, err := os.MkdirTemp(filepath.Dir(lockPath), ".build-")
	if err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp, pkgs); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	for _, b := range todo {
		if err := os.Rename(filepath.Join(tmp, b.out), b.dest); err != nil {
			return fmt.Errorf("build %s: %w", what, err)
		}
	}
	p.printf("build: %s: %s built in %s", what, strings.Join(names, ", "), since(start))
	return nil
}

func (p *progress) cachedAt(what, dest string, done func() bool, remove func(string) error, build func(out string) error) error {
	if done() {
		p.printf("build: %s cached at %s", what, dest)
		return nil
	}
	lock, err := os.OpenFile(dest+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("build %s: lock: %w", what, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("build %s: lock: %w", what, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if done() {
		p.printf("build: %s built by another run, cached at %s", what, dest)
		return nil
	}
	p.printf("build: %s not cached, building (several minutes on a cold machine)", what)
	start := time.Now()
	tmp := fmt.Sprintf("%s.tmp-%d", dest, os.Getpid())
	defer remove(tmp) //nolint:errcheck // gone after a successful rename
	if err := remove(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("build %s: remove incomplete %s: %w", what, dest, err)
	}
	if err := build(tmp); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	p.printf("build: %s built in %s", what, since(start))
	return nil
}

func (p *progress) always(what string, build func() error) error {
	start := time.Now()
	if err := build(); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	p.printf("build: %s built in %s", what, since(start))
	return nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// goCmd runs the go tool in dir; its output is returned in the error only.
func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, tail(out.String(), 40))
	}
	return nil
}

func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); isExecutable(p) {
			return p
		}
	}
	return "go"
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
