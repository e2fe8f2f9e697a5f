package mutate

import (
	"fmt"
	"maps"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/slab"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// Apply returns a copy of pod that carries plan's identity, and warnings for
// what it left alone because the Pod already set it. pod is not changed; the
// copy shares with it what Apply did not change, so neither is to be
// changed in place afterwards.
//
// It adds, and never overwrites:
//   - a projected service account token volume named VolumeName (unless a
//     volume of that name exists);
//   - to every container, init container and native sidecar not named in
//     plan.SkipContainers: a read-only mount of that volume at plan.MountPath,
//     AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (neither, when the
//     container sets either already), AWS_STS_REGIONAL_ENDPOINTS=regional when
//     asked for and unset, and AWS_REGION with AWS_DEFAULT_REGION when a
//     region is planned and the container sets neither, and
//     AWS_ROLE_SESSION_NAME from the Pod's name (downward API) when a
//     session name is planned, the Pod's name can be one, and it is unset;
//   - with plan.Profiles: the identity.AWSConfig annotation holding the AWS
//     config file (AWSConfig), projected into the token volume as
//     ConfigFile, and to every container AWS_CONFIG_FILE (unless it sets
//     its own); a container in plan.ContainerProfiles gets AWS_PROFILE
//     instead of AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (see
//     profileEnv). With identity.TokenSourceSPIFFE the file comes in a
//     projected volume of its own, ConfigVolumeName, mounted read-only at
//     ConfigMountPath. A Pod that already has the annotation with other
//     content gets no profiles (configFor).
//
// With identity.TokenSourceSPIFFE the token volume is an in-memory emptyDir
// instead, written by the SVIDHelperName native sidecar inserted as the
// first init container, which alone mounts the Workload API socket volume.
// First, because the kubelet starts init containers in order, each after
// the native sidecars before it are started: every init container and
// native sidecar after the helper, and every container, starts once the
// first token is written, and gets the token as above. (Only one found
// before the helper, where another webhook put it after an earlier pass,
// gets nothing, with a warning.) A Pod whose names collide with the helper's
// (a container called SVIDHelperName that is not the helper, or a volume
// called SocketVolumeName that the helper did not bring) gets nothing, with
// a warning: the helper or the socket would not be the one the webhook
// means. Windows Pods get nothing: the helper image is Linux only.
func Apply(pod *corev1.Pod, plan identity.Plan) (*corev1.Pod, []string) {
	return new(Scratch).Apply(pod, plan)
}

// Scratch holds the memory of Apply's copy for use again: the handler
// applies with a pooled Scratch, and resets it once the patch is made.
// Allocated anew for each admission, the copy was a third of the
// webhook's garbage under load.
type Scratch struct {
	pod        corev1.Pod
	containers slab.Slab[corev1.Container]
	env        slab.Slab[corev1.EnvVar]
	mounts     slab.Slab[corev1.VolumeMount]
	volumes    slab.Slab[corev1.Volume]
}

// Room Apply leaves for what it may append, in place: every variable
// container may add, the token and config mounts, and the token, config
// and Workload API socket volumes (and the SPIFFE helper among the init
// containers).
const (
	envRoom, mountRoom, volumeRoom, initRoom = 7, 2, 3, 1
)

// Apply is Apply with its copy in s: the Pod it returns, and every list
// in it, must not be used after s.Reset.
func (s *Scratch) Apply(pod *corev1.Pod, plan identity.Plan) (*corev1.Pod, []string) {
	s.reserve(pod)
	out := s.appendableCopy(pod)
	windows := IsWindows(pod)
	spiffe := plan.TokenSource == identity.TokenSourceSPIFFE
	m := mutation{scratch: s, plan: plan, tokenPath: tokenPath(plan.MountPath, windows)}
	m.sessionName = m.sessionNameFor(pod)
	m.config = m.configFor(pod)
	if spiffe && windows {
		m.warn("token source %q is not supported for Windows pods; no AWS credentials were injected", identity.TokenSourceSPIFFE)
		return out, m.warnings
	}
	// Where the helper is in the init containers: -1 until it is inserted
	// at 0, so that every init container comes after it.
	helper := -1
	if spiffe {
		var conflict string
		if helper, conflict = spiffeHelperIndex(pod, plan); conflict != "" {
			m.warn("%s; no AWS credentials were injected", conflict)
			return out, m.warnings
		}
	}

	touched := false
	for i := range out.Spec.InitContainers {
		c := &out.Spec.InitContainers[i]
		if spiffe && i <= helper {
			if i < helper && !plan.SkipContainers[c.Name] {
				m.warn("init container %q comes before the SPIFFE token helper and starts without a token; it gets no AWS credentials", c.Name)
			}
			continue
		}
		touched = m.container(c, "init container") || touched
	}
	for i := range out.Spec.Containers {
		touched = m.container(&out.Spec.Containers[i], "container") || touched
	}
	// A Pod whose every container is skipped gets no volume either: nothing
	// would read it.
	if !touched {
		return out, m.warnings
	}
	out.Spec.Volumes = s.volumes.Grow(out.Spec.Volumes, volumeRoom)
	if !slices.ContainsFunc(out.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName }) {
		if spiffe {
			out.Spec.Volumes = append(out.Spec.Volumes, spiffeTokenVolume())
		} else {
			out.Spec.Volumes = append(out.Spec.Volumes, m.tokenVolume())
		}
	}
	if m.config != "" && m.configMount != "" && !slices.ContainsFunc(out.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == ConfigVolumeName }) {
		out.Spec.Volumes = append(out.Spec.Volumes, configVolume())
	}
	if _, ok := pod.Annotations[identity.AWSConfig]; m.config != "" && !ok {
		out.Annotations = maps.Clone(pod.Annotations)
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[identity.AWSConfig] = m.config
	}
	if spiffe && helper < 0 {
		addSPIFFE(out, plan)
	}
	return out, m.warnings
}

// appendableCopy copies pod as far as Apply changes it: the container lists
// and each container, with every list Apply appends to clipped to its length
// so that appending allocates anew instead of writing into memory pod
// shares. The rest (metadata, each container's other fields) is shared:
// Apply only reads it. A deep copy was a twentieth of the webhook's CPU
// under load (docs/benchmarks.md).
func (s *Scratch) appendableCopy(pod *corev1.Pod) *corev1.Pod {
	s.pod = *pod
	out := &s.pod
	out.Spec.InitContainers = s.appendableContainers(pod.Spec.InitContainers, initRoom)
	out.Spec.Containers = s.appendableContainers(pod.Spec.Containers, 0)
	out.Spec.Volumes = slices.Clip(pod.Spec.Volumes)
	return out
}

func (s *Scratch) appendableContainers(in []corev1.Container, room int) []corev1.Container {
	out := s.containers.Copy(in, room)
	for i := range out {
		c := &out[i]
		c.Env, c.VolumeMounts = slices.Clip(c.Env), slices.Clip(c.VolumeMounts)
	}
	return out
}

// reserve makes room in s for all of Apply's copy of pod at once, so that
// a new Scratch makes one array of each kind.
func (s *Scratch) reserve(pod *corev1.Pod) {
	containers, env, mounts := len(pod.Spec.InitContainers)+initRoom+len(pod.Spec.Containers), 0, 0
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			env += len(list[i].Env) + envRoom
			mounts += len(list[i].VolumeMounts) + mountRoom
		}
	}
	s.containers.Reserve(containers)
	s.env.Reserve(env)
	s.mounts.Reserve(mounts)
	s.volumes.Reserve(len(pod.Spec.Volumes) + volumeRoom)
}

// Reset makes s's memory free for the next Apply, and zeroes it, so that
// it keeps nothing of the Pod; what the last Apply returned is not to be
// used after.
func (s *Scratch) Reset() {
	s.pod = corev1.Pod{}
	// Enough for Pods far larger than typical ones; a larger Pod's
	// arrays are dropped rather than kept.
	s.containers.Reset(64)
	s.env.Reset(2048)
	s.mounts.Reset(512)
	s.volumes.Reset(256)
}

func isNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

type mutation struct {
	scratch   *Scratch // where the lists it grows are copied to
	plan      identity.Plan
	tokenPath string
	// config is the AWS config file of the plan's profiles, "" for none;
	// configPath is where containers read it. configMount, when not
	// empty, is where the config volume is mounted: with the SPIFFE token
	// source, whose token volume is an emptyDir the helper writes, the file
	// comes in a volume of its own (ConfigVolumeName).
	config, configPath, configMount string
	// sessionName: each container gets AWS_ROLE_SESSION_NAME from the Pod's
	// name.
	sessionName bool
	warnings    []string
}

// STS's bounds on a role session name ([\w+=,.@-]{2,64}). A Pod name is
// a DNS subdomain, always in that alphabet.
const (
	minSessionName = 2
	maxSessionName = 64
)

// sessionNameFor reports whether the Pod's name can be its session name.
// The name comes from the downward API (metadata.name): a Pod created from
// generateName has no name yet at admission, and its generated one is at
// most 63 characters. An explicit name outside STS's bounds would make
// every AssumeRoleWithWebIdentity call fail, so it gets none, and a warning.
func (m *mutation) sessionNameFor(pod *corev1.Pod) bool {
	if m.plan.SessionName != identity.SessionNamePod {
		return false
	}
	if n := len(pod.Name); pod.Name != "" && (n < minSessionName || n > maxSessionName) {
		m.warn("pod name is %d characters, outside the %d to %d an STS role session name may have; %s was not set", n, minSessionName, maxSessionName, EnvRoleSessionName)
		return false
	}
	return true
}

// container mutates c in place and reports whether it is to carry the
// identity (and so needs the volume), even if it already had all of it.
func (m *mutation) container(c *corev1.Container, kind string) bool {
	if m.plan.SkipContainers[c.Name] {
		return false
	}
	profile := m.plan.ContainerProfiles[c.Name]
	if profile != "" && m.config == "" {
		m.warn("%s %q asked for profile %q, but the pod has no AWS config file; it gets no AWS credentials", kind, c.Name, profile)
		return false
	}
	// Room for every variable this may add, in one copy.
	c.Env = m.scratch.env.Grow(c.Env, envRoom)
	m.mount(c, kind)

	addConfig := false
	if m.config != "" && m.configMount != "" && !m.mountConfig(c, kind) {
		if profile != "" {
			m.warn("%s %q asked for profile %q, but the AWS config file could not be mounted; it gets the default role instead", kind, c.Name, profile)
			profile = ""
		}
	} else if m.config != "" {
		switch file, has := lookupEnv(c.Env, EnvConfigFile); {
		case !has:
			addConfig = true
		case file != m.configPath:
			m.warn("%s %q already sets %s; it keeps its own file, without the profiles of %s", kind, c.Name, EnvConfigFile, identity.Profiles)
			if profile != "" {
				m.warn("%s %q asked for profile %q, which is not in its own %s; it gets the default role instead", kind, c.Name, profile, EnvConfigFile)
				profile = ""
			}
		}
	}

	role, hasRole := lookupEnv(c.Env, EnvRoleARN)
	file, hasFile := lookupEnv(c.Env, EnvWebIdentityTokenFile)
	switch {
	case profile != "":
		m.profileEnv(c, kind, profile)
	case !hasRole && !hasFile:
		c.Env = append(c.Env,
			corev1.EnvVar{Name: EnvRoleARN, Value: m.plan.RoleARN},
			corev1.EnvVar{Name: EnvWebIdentityTokenFile, Value: m.tokenPath})
		if _, own := lookupEnv(c.Env, EnvProfile); own && m.config != "" {
			m.warn("%s %q sets %s itself, but the SDKs prefer %s and %s to it, so it uses role %s; name the container in %s to use a profile",
				kind, c.Name, EnvProfile, EnvRoleARN, EnvWebIdentityTokenFile, m.plan.RoleARN, identity.ContainerProfiles)
		}
	case role == m.plan.RoleARN && file == m.tokenPath:
		// Our own output, seen again on reinvocation.
	default:
		m.warn("%s %q already sets %s or %s; left as it is, so it does not use role %s", kind, c.Name, EnvRoleARN, EnvWebIdentityTokenFile, m.plan.RoleARN)
	}
	if addConfig {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvConfigFile, Value: m.configPath})
	}

	if m.plan.RegionalSTS {
		addEnvIfUnset(c, EnvSTSRegionalEndpoints, "regional")
	}
	if m.plan.Region != "" {
		_, hasRegion := lookupEnv(c.Env, EnvRegion)
		_, hasDefault := lookupEnv(c.Env, EnvDefaultRegion)
		if !hasRegion && !hasDefault {
			c.Env = append(c.Env,
				corev1.EnvVar{Name: EnvRegion, Value: m.plan.Region},
				corev1.EnvVar{Name: EnvDefaultRegion, Value: m.plan.Region})
		}
	}
	if _, set := lookupEnv(c.Env, EnvRoleSessionName); m.sessionName && !set {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvRoleSessionName, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}})
	}
	return true
}

// mount adds the token mount unless the container has it, or has something
// else at the same path (the API server would reject a second mount there).
func (m *mutation) mount(c *corev1.Container, kind string) {
	for _, vm := range c.VolumeMounts {
		if vm.Name == VolumeName {
			return
		}
		if path.Clean(vm.MountPath) == path.Clean(m.plan.MountPath) {
			m.warn("%s %q already mounts volume %q at %s; the token volume was not mounted there", kind, c.Name, vm.Name, vm.MountPath)
			return
		}
	}
	c.VolumeMounts = append(m.scratch.mounts.Grow(c.VolumeMounts, mountRoom), corev1.VolumeMount{
		Name:      VolumeName,
		MountPath: m.plan.MountPath,
		ReadOnly:  true,
	})
}

func (m *mutation) warn(format string, args ...any) {
	m.warnings = append(m.warnings, fmt.Sprintf(format, args...))
}

// tokenVolume projects the token and, with profiles, the AWS config file.
func (m *mutation) tokenVolume() corev1.Volume {
	expiration := m.plan.ExpirationSeconds
	sources := []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
		Audience:          m.plan.Audience,
		ExpirationSeconds: &expiration,
		Path:              TokenFile,
	}}}
	if m.config != "" {
		sources = append(sources, configProjection())
	}
	return corev1.Volume{
		Name:         VolumeName,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}},
	}
}

func lookupEnv(env []corev1.EnvVar, name string) (string, bool) {
	for _, e := range env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func addEnvIfUnset(c *corev1.Container, name, value string) {
	if _, ok := lookupEnv(c.Env, name); !ok {
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
}
