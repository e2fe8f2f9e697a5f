package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// NodeName is the node tier's one node.
const NodeName = "irsa-e2e-node"

// Node is the node tier: kube-controller-manager and kube-scheduler beside
// the API server, containerd with runc and the CNI bridge, a kubelet
// registered as NodeName, so that a Deployment really runs Pods, kube-proxy
// for Services and CoreDNS for their names. Pods reach the host only
// through the node's bridge: MinIO is offered there by a proxy
// (MinIOEndpoint), the API server by another (the kubernetes Service's
// endpoint), and the kubelet and CoreDNS serve on the bridge's address.
type Node struct {
	// Net is the bridge, its host address (the node IP) and the Pod subnet.
	Net *podNetwork
	// MinIOEndpoint is MinIO (STS and S3) as a Pod reaches it.
	MinIOEndpoint string
	// APIServerEndpoint is the kubernetes Service's one endpoint: a proxy
	// on the bridge's host address to the API server on 127.0.0.1. A
	// Pod's in-cluster client dials the Service's ClusterIP
	// (Net.APIServiceIP) on port 443, which kube-proxy sends here.
	APIServerEndpoint string

	ControllerManager *ControllerManager
	Scheduler         *Scheduler
	Containerd        *Containerd
	Kubelet           *Kubelet
	KubeProxy         *KubeProxy
	DNS               *CoreDNS

	dir    string
	images *NodeImages
	before *HostState
	lock   *os.File
	proxy  *tcpProxy
	// apiProxy carries in-cluster clients (installed webhook and
	// discovery Pods) to the API server.
	apiProxy *tcpProxy
}

// apiEndpointPort is where apiProxy listens on the bridge's host address:
// the kubernetes Service's endpoint port (the Service's own port, which
// the kubelet gives Pods as KUBERNETES_SERVICE_PORT, stays 443; the
// host's 443 on the bridge is the stand-in Ingress's).
const apiEndpointPort = 6443

// nodeLockTimeout bounds the wait for another node tier on this machine
// (the kubelet's cgroups, sysctls and iptables chains are the host's: one
// at a time).
const nodeLockTimeout = 20 * time.Minute

// NodeUnsupported says why this machine cannot run a node tier, or nil:
// it needs root, Linux, overlayfs, runc, iptables and the CNI plugins.
func NodeUnsupported() error {
	if os.Geteuid() != 0 {
		return errors.New("the node tier needs root (it runs a kubelet and containerd)")
	}
	var missing []string
	for _, p := range []string{runcPath, filepath.Join(cniBinDir, "bridge"), filepath.Join(cniBinDir, "host-local"), filepath.Join(cniBinDir, "loopback")} {
		if !isExecutable(p) {
			missing = append(missing, p)
		}
	}
	for _, t := range []string{"iptables-save", "ip6tables-save", "ip"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the node tier needs %v (Debian: apt-get install runc containernetworking-plugins iptables iproute2)", missing)
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil || !containsLine(string(fs), "overlay") {
		return errors.New("the node tier needs overlayfs (containerd's snapshotter): modprobe overlay")
	}
	return nil
}

// planNode prepares the host for a node tier before the control plane
// starts (the API server's flags and MinIO's certificate name the node's
// address): it takes the machine's node lock, records the host state, and
// creates the bridge.
func planNode(ctx context.Context, dir string) (n *Node, err error) {
	if err := NodeUnsupported(); err != nil {
		return nil, err
	}
	n = &Node{dir: filepath.Join(dir, "node")}
	if err := os.MkdirAll(n.dir, 0o750); err != nil {
		return nil, fmt.Errorf("node dir: %w", err)
	}
	if n.lock, err = lockNode(ctx); err != nil {
		return nil, err
	}
	if n.before, err = SnapshotHost(n.dir); err != nil {
		n.release()
		return nil, fmt.Errorf("record host state: %w", err)
	}
	if n.Net, err = choosePodNetwork(); err != nil {
		n.release()
		return nil, err
	}
	if err := n.Net.create(); err != nil {
		_ = n.restore()
		return nil, err
	}
	return n, nil
}

func lockNode(ctx context.Context) (*os.File, error) {
	path := filepath.Join(os.TempDir(), "irsa-webhook-e2e-node.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node lock %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, nodeLockTimeout)
	defer cancel()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("node lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("node lock %s: another node tier held it for %s: %w", path, nodeLockTimeout, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// start runs the node tier's processes against the running Stack and
// returns once the node is Ready and the local images are imported.
func (n *Node) start(ctx context.Context, s *Stack) (err error) {
	nb := s.Binaries.Node
	n.images = nb.Images
	u, err := url.Parse(s.MinIO.Endpoint)
	if err != nil {
		return fmt.Errorf("minio endpoint: %w", err)
	}
	if n.proxy, err = newTCPProxy(net.JoinHostPort(n.Net.HostIP.String(), "0"), u.Host); err != nil {
		return err
	}
	n.MinIOEndpoint = "https://" + n.proxy.Addr()
	api, err := url.Parse(s.APIServer.URL)
	if err != nil {
		return fmt.Errorf("api server url: %w", err)
	}
	if n.apiProxy, err = newTCPProxy(net.JoinHostPort(n.Net.HostIP.String(), strconv.Itoa(apiEndpointPort)), api.Host); err != nil {
		return err
	}
	n.APIServerEndpoint = "https://" + n.apiProxy.Addr()
	if err := s.phase("kubernetes Service endpoint", func() error { return n.publishAPIEndpoint(ctx, s.APIServer.Client) }); err != nil {
		return err
	}
	// kube-proxy's rules send a Pod's packets for a ClusterIP back out of
	// the bridge to another Pod: the host forwards (restored at teardown).
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip forwarding for Services: %w", err)
	}

	if n.ControllerManager, err = newControllerManager(nb.KubeControllerManager, s.APIServer, s.PKI, s.SigningKey, s.LogDir); err != nil {
		return err
	}
	if err := s.phase("kube-controller-manager", func() error { return n.ControllerManager.Start(ctx) }); err != nil {
		return err
	}
	if n.Scheduler, err = newScheduler(nb.KubeScheduler, s.APIServer, s.LogDir); err != nil {
		return err
	}
	if err := s.phase("kube-scheduler", func() error { return n.Scheduler.Start(ctx) }); err != nil {
		return err
	}
	if n.Containerd, err = newContainerd(nb.ContainerdDir, filepath.Join(n.dir, "containerd"), s.LogDir, nb.Images.PauseRef, n.Net); err != nil {
		return err
	}
	if err := s.phase("containerd", func() error { return n.Containerd.Start(ctx) }); err != nil {
		return err
	}
	if err := s.phase("images", func() error { return n.importImages(ctx, s.Binaries) }); err != nil {
		return err
	}
	if n.Kubelet, err = newKubelet(nb.Kubelet, s.APIServer, s.PKI, filepath.Join(n.dir, "kubelet"), s.LogDir, n.Containerd.Socket, n.Net); err != nil {
		return err
	}
	if err := s.phase("kubelet", func() error { return n.Kubelet.Start(ctx) }); err != nil {
		return err
	}
	if n.KubeProxy, err = newKubeProxy(nb.KubeProxy, s.APIServer, n.Net, filepath.Join(n.dir, "kube-proxy"), s.LogDir); err != nil {
		return err
	}
	if err := s.phase("kube-proxy", func() error { return n.KubeProxy.Start(ctx) }); err != nil {
		return err
	}
	if n.DNS, err = newCoreDNS(nb.CoreDNS, s.APIServer, n.Net.DNSServiceIP(), filepath.Join(n.dir, "coredns"), s.LogDir); err != nil {
		return err
	}
	return s.phase("coredns", func() error { return n.DNS.Start(ctx) })
}

// publishAPIEndpoint makes apiProxy the kubernetes Service's endpoint. The
// API server runs with --endpoint-reconciler-type=none (it listens on
// 127.0.0.1, which no Pod can reach), so the slice is the node tier's.
func (n *Node) publishAPIEndpoint(ctx context.Context, c kubernetes.Interface) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kubernetes",
			Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "kubernetes",
				discoveryv1.LabelManagedBy:   "irsa-e2e-node",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{n.Net.HostIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To("https"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](apiEndpointPort),
		}},
	}
	if _, err := c.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("endpoint slice of the kubernetes Service: %w", err)
	}
	return nil
}

// importImages imports this run's pause, s3get and (when built) webhook
// images.
func (n *Node) importImages(ctx context.Context, b *Binaries) error {
	for _, path := range []string{b.Node.Images.PauseTarball, b.Node.Images.S3GetTarball, b.Node.Images.WebhookTarball} {
		if path == "" {
			continue
		}
		if err := n.Containerd.Import(ctx, path); err != nil {
			return fmt.Errorf("import %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

// Processes lists the node tier's started processes, in start order.
func (n *Node) Processes() []*Process {
	var ps []*Process
	if n.ControllerManager != nil {
		ps = append(ps, n.ControllerManager.Process)
	}
	if n.Scheduler != nil {
		ps = append(ps, n.Scheduler.Process)
	}
	if n.Containerd != nil {
		ps = append(ps, n.Containerd.Process)
	}
	if n.Kubelet != nil {
		ps = append(ps, n.Kubelet.Process)
	}
	if n.KubeProxy != nil {
		ps = append(ps, n.KubeProxy.Process)
	}
	if n.DNS != nil {
		ps = append(ps, n.DNS.Process)
	}
	return ps
}

// podsGoneTimeout bounds the kubelet's stopping of every Pod at teardown.
const podsGoneTimeout = 60 * time.Second

// stop stops the node tier while the API server still runs: the
// controllers first (so that nothing makes new Pods), then every Pod
// through the kubelet (which stops the containers, tears down their
// networks and unmounts their volumes), then the kubelet and containerd,
// and whatever shim or container outlived them, and last kube-proxy, whose
// rules --cleanup removes.
func (n *Node) stop(ctx context.Context, c kubernetes.Interface) error {
	var errs []error
	var controllers []*Process
	if n.Scheduler != nil {
		controllers = append(controllers, n.Scheduler.Process)
	}
	if n.ControllerManager != nil {
		controllers = append(controllers, n.ControllerManager.Process)
	}
	for _, p := range controllers {
		if err := p.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Kubelet != nil && n.Kubelet.Running() && c != nil {
		if err := deleteNodePods(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Kubelet != nil {
		if err := n.Kubelet.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Containerd != nil {
		if n.Containerd.Running() {
			n.Containerd.removeTasks(ctx)
		}
		if err := n.Containerd.Stop(); err != nil {
			errs = append(errs, err)
		}
		n.Containerd.killShims()
	}
	if n.DNS != nil {
		if err := n.DNS.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.KubeProxy != nil {
		if err := n.KubeProxy.Stop(); err != nil {
			errs = append(errs, err)
		}
		if err := n.KubeProxy.Cleanup(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range []**tcpProxy{&n.proxy, &n.apiProxy} {
		if *p != nil {
			(*p).Close()
			*p = nil
		}
	}
	return errors.Join(errs...)
}

// deleteNodePods deletes every Pod and waits (bounded) until the kubelet
// confirmed each one stopped.
func deleteNodePods(ctx context.Context, c kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, podsGoneTimeout)
	defer cancel()
	pods, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods at teardown: %w", err)
	}
	for _, p := range pods.Items {
		_ = c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
	}
	err = waitFor(ctx, podsGoneTimeout, "every pod stopped by the kubelet", nil, func(ctx context.Context) error {
		pods, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d pods left, e.g. %s/%s in %s", len(pods.Items), pods.Items[0].Namespace, pods.Items[0].Name, pods.Items[0].Status.Phase)
		}
		return nil
	})
	if err != nil {
		// Force the rest; the host cleanup stops what they left.
		pods, _ := c.CoreV1().Pods(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
		if pods != nil {
			for _, p := range pods.Items {
				_ = c.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			}
		}
		return fmt.Errorf("teardown: %w", err)
	}
	return nil
}

// restore puts the host back as planNode found it, checks that it is, and
// lets go of the node lock. Call it after every process is stopped.
func (n *Node) restore() error {
	var err error
	if n.before != nil {
		err = restoreHost(n.before, n.dir)
		// The bridge is ours by name, whether or not it was seen made.
		if n.Net != nil && linkExists(n.Net.Bridge) {
			if e := runIP("link", "delete", n.Net.Bridge); e != nil {
				err = errors.Join(err, e)
			}
		}
		// Checked while the node lock is still held: no other node tier
		// of this machine can have changed the host in between.
		if after, e := SnapshotHost(n.dir); e != nil {
			err = errors.Join(err, fmt.Errorf("record host state after the node tier: %w", e))
		} else if d := cmp.Diff(n.before, after); d != "" {
			err = errors.Join(err, fmt.Errorf("the host is not as the node tier found it (-before +after):\n%s", d))
		}
		n.before = nil
	}
	n.release()
	return err
}

func (n *Node) release() {
	if n.lock != nil {
		_ = syscall.Flock(int(n.lock.Fd()), syscall.LOCK_UN)
		n.lock.Close()
		n.lock = nil
	}
}

// PodEnv is the environment a workload container needs besides what the
// webhook injects: MinIO as the STS and S3 endpoints, and the CA bundle
// (mounted from PodCAConfigMap at PodCAPath).
func (n *Node) PodEnv() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "AWS_ENDPOINT_URL_STS", Value: n.MinIOEndpoint},
		{Name: "AWS_ENDPOINT_URL_S3", Value: n.MinIOEndpoint},
		{Name: "AWS_CA_BUNDLE", Value: PodCAPath},
	}
}

// Where a workload finds the Stack's CA: a ConfigMap, CreateCAConfigMap
// makes it in a namespace.
const (
	PodCAConfigMap = "irsa-e2e-ca"
	PodCAPath      = "/etc/irsa-e2e/ca.crt"
)

// containsLine reports whether a line of s has word as a field.
func containsLine(s, word string) bool {
	for _, l := range strings.Split(s, "\n") {
		if slices.Contains(strings.Fields(l), word) {
			return true
		}
	}
	return false
}

func runIP(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CreateCAConfigMap puts the Stack's CA in namespace as PodCAConfigMap, for
// a workload to trust MinIO with (AWS_CA_BUNDLE).
func (s *Stack) CreateCAConfigMap(ctx context.Context, namespace string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: PodCAConfigMap, Namespace: namespace},
		Data:       map[string]string{"ca.crt": string(s.PKI.CAPEM)},
	}
	if _, err := s.APIServer.Client.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create config map %s/%s: %w", namespace, PodCAConfigMap, err)
	}
	return nil
}

// Workload is a Deployment of one s3get Pod that reads Bucket/ObjectKey
// every interval, as ServiceAccount serviceAccount, with the node's
// endpoints and CA. user, when not nil, is the container's runAsUser.
func (n *Node) Workload(name, serviceAccount string, every time.Duration, user *int64) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	var sc *corev1.SecurityContext
	if user != nil {
		sc = &corev1.SecurityContext{RunAsUser: user, RunAsNonRoot: ptr.To(*user != 0), AllowPrivilegeEscalation: ptr.To(false)}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            serviceAccount,
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:            "app",
						Image:           n.images.S3GetRef,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"-every", every.String(), Bucket, ObjectKey},
						Env:             n.PodEnv(),
						SecurityContext: sc,
						VolumeMounts:    []corev1.VolumeMount{{Name: "irsa-e2e-ca", MountPath: filepath.Dir(PodCAPath), ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "irsa-e2e-ca", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: PodCAConfigMap}},
					}}},
				},
			},
		},
	}
}

// RunningPod waits (bounded) until the Deployment's one Pod is Running on
// the node and returns it.
func RunningPod(ctx context.Context, c kubernetes.Interface, namespace, app string, timeout time.Duration) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := waitFor(ctx, timeout, "pod of "+namespace+"/"+app+" Running", nil, func(ctx context.Context) error {
		pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return errors.New("no pod yet (is kube-controller-manager making the ReplicaSet's?)")
		}
		p := &pods.Items[0]
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod %s is %s on %q: %s", p.Name, p.Status.Phase, p.Spec.NodeName, podWhy(p))
		}
		pod = p
		return nil
	})
	return pod, err
}

// podWhy summarises why a Pod is not running yet.
func podWhy(p *corev1.Pod) string {
	var why []string
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			why = append(why, string(c.Type)+": "+c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			why = append(why, cs.Name+": "+w.Reason+" "+w.Message)
		}
	}
	return strings.Join(why, "; ")
}

// WaitLog waits (bounded) until the container's log, read through the API
// server (and so from the kubelet), has a line for which match is true,
// and returns the whole log.
func WaitLog(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, container string, timeout time.Duration, match func(line string) bool) (string, error) {
	var log string
	err := waitFor(ctx, timeout, "log of "+pod.Namespace+"/"+pod.Name, nil, func(ctx context.Context) error {
		raw, err := c.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
		if err != nil {
			return err
		}
		log = string(raw)
		for _, l := range strings.Split(log, "\n") {
			if match(l) {
				return nil
			}
		}
		return fmt.Errorf("no matching line yet; log so far:\n%s", tail(log, 10))
	})
	return log, err
}

// TokenFile is where the kubelet wrote the webhook's projected token of a
// Pod on the host (its root dir, the projected volume's directory).
func (n *Node) TokenFile(pod *corev1.Pod, volume, path string) string {
	return filepath.Join(n.Kubelet.RootDir, "pods", string(pod.UID), "volumes", "kubernetes.io~projected", volume, path)
}
