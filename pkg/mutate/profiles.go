package mutate

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// configFor is the AWS config file of plan's profiles for pod, or "" when
// the Pod gets none: the plan has no profiles, or the Pod already carries
// the identity.AWSConfig annotation with other content, which an
// append-only mutation cannot rewrite (and which the webhook never takes
// from the user), so the profiles are left out, with a warning.
func (m *mutation) configFor(pod *corev1.Pod) string {
	if len(m.plan.Profiles) == 0 {
		return ""
	}
	sessionName := ""
	if m.sessionName {
		// A config file holds no downward API reference: only an explicit
		// name is known at admission. Without one, each profile gets the
		// SDK's default (SDKs that read AWS_ROLE_SESSION_NAME for profiles
		// too still get the Pod's name from the env).
		sessionName = pod.Name
	}
	dir := m.plan.MountPath
	if m.plan.TokenSource == identity.TokenSourceSPIFFE {
		m.configMount = ConfigMountPath(m.plan.MountPath)
		dir = m.configMount
	}
	m.configPath = configPath(dir, IsWindows(pod))
	content := AWSConfig(m.plan, m.tokenPath, sessionName)
	if existing, ok := pod.Annotations[identity.AWSConfig]; ok && existing != content {
		m.warn("the pod already has the annotation %s with other content, which the webhook does not overwrite; no AWS config file was written, so the profiles of %s are not available",
			identity.AWSConfig, identity.Profiles)
		return ""
	}
	return content
}

// AWSConfig renders the shared AWS config file of plan: a [default]
// profile for plan.RoleARN and one [profile NAME] per plan.Profiles, each
// assuming its role with the token at tokenPath, with the plan's region,
// regional STS endpoints and sessionName when set. Every value was
// validated (role ARNs, profile names, the region; a Pod name is a DNS
// subdomain), so none can break the file's syntax.
func AWSConfig(plan identity.Plan, tokenPath, sessionName string) string {
	var b strings.Builder
	b.WriteString("# Written by irsa-webhook: [default] is the service account's role-arn, each profile a role of its " + identity.Profiles + " annotation.\n")
	section := func(header, roleARN string) {
		fmt.Fprintf(&b, "[%s]\nrole_arn = %s\nweb_identity_token_file = %s\n", header, roleARN, tokenPath)
		if plan.Region != "" {
			fmt.Fprintf(&b, "region = %s\n", plan.Region)
		}
		if plan.RegionalSTS {
			b.WriteString("sts_regional_endpoints = regional\n")
		}
		if sessionName != "" {
			fmt.Fprintf(&b, "role_session_name = %s\n", sessionName)
		}
	}
	section(identity.DefaultProfile, plan.RoleARN)
	for _, p := range plan.Profiles {
		b.WriteString("\n")
		section("profile "+p.Name, p.RoleARN)
	}
	return b.String()
}

// configProjection projects the identity.AWSConfig annotation as the file
// ConfigFile of the token volume: the kubelet writes it, so the webhook
// needs no ConfigMap and no write access anywhere.
func configProjection() corev1.VolumeProjection {
	return corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
		Path:     ConfigFile,
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['" + identity.AWSConfig + "']"},
	}}}}
}

// ConfigMountPath is where the config volume of a SPIFFE Pod is mounted:
// beside the token's mount, not in it (the helper owns that volume).
func ConfigMountPath(tokenMountPath string) string {
	return path.Join(path.Dir(tokenMountPath), ConfigVolumeName)
}

// configVolume projects the AWS config annotation alone, for the SPIFFE
// token source.
func configVolume() corev1.Volume {
	return corev1.Volume{
		Name:         ConfigVolumeName,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{configProjection()}}},
	}
}

// mountConfig adds the config volume's mount unless the container has it;
// it reports false when something else is mounted at its path.
func (m *mutation) mountConfig(c *corev1.Container, kind string) bool {
	for _, vm := range c.VolumeMounts {
		if vm.Name == ConfigVolumeName {
			return true
		}
		if path.Clean(vm.MountPath) == m.configMount {
			m.warn("%s %q already mounts volume %q at %s; the AWS config file was not mounted there", kind, c.Name, vm.Name, vm.MountPath)
			return false
		}
	}
	c.VolumeMounts = append(m.scratch.mounts.Grow(c.VolumeMounts, mountRoom), corev1.VolumeMount{Name: ConfigVolumeName, MountPath: m.configMount, ReadOnly: true})
	return true
}

// configPath is the config file's path as the container sees it.
func configPath(mountPath string, windows bool) string {
	return containerPath(path.Join(mountPath, ConfigFile), windows)
}

// profileEnv gives a container that asked for profile AWS_PROFILE instead of
// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE: the SDKs (the Go SDK v2 and
// botocore among them) prefer those two variables to an AWS_PROFILE from the
// environment, and would assume the default role. A container that sets
// any of them itself keeps what it set, with a warning.
func (m *mutation) profileEnv(c *corev1.Container, kind, profile string) {
	_, hasRole := lookupEnv(c.Env, EnvRoleARN)
	_, hasFile := lookupEnv(c.Env, EnvWebIdentityTokenFile)
	set, hasProfile := lookupEnv(c.Env, EnvProfile)
	switch {
	case hasRole || hasFile || (hasProfile && set != profile):
		m.warn("%s %q already sets %s, %s or %s; left as it is, so it does not use profile %q", kind, c.Name, EnvRoleARN, EnvWebIdentityTokenFile, EnvProfile, profile)
	case !hasProfile:
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvProfile, Value: profile})
	}
}
