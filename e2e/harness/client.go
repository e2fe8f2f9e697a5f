package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// ClientResult is what the s3get client printed and how it exited.
type ClientResult struct {
	Stdout, Stderr string
	Err            error
}

// ContainerEnv turns a stored Pod's container into the environment its
// process would see: exactly the container's env, with the token file placed
// under root at the path the webhook's volume mount gives it (as kubelet
// would mount it), plus endpoint overrides that send STS and S3 to MinIO.
// A valueFrom of the Pod's metadata.name or metadata.namespace is resolved
// as the kubelet's downward API does; any other valueFrom is an error. An
// AWS_CONFIG_FILE in the mount is written from the Pod's
// irsa-webhook.io/aws-config annotation, as the downward API item of the
// token volume has the kubelet write it, with the token's path in it moved
// under root like the token itself.
func (s *Stack) ContainerEnv(pod *corev1.Pod, container, token, root string) ([]string, error) {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == container {
			c = &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == container {
			c = &pod.Spec.InitContainers[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("pod %s/%s has no container %s", pod.Namespace, pod.Name, container)
	}
	mountPath, configPath := "", ""
	for _, m := range c.VolumeMounts {
		switch m.Name {
		case mutate.VolumeName:
			mountPath = m.MountPath
			if configPath == "" {
				configPath = path.Join(m.MountPath, mutate.ConfigFile)
			}
		case mutate.ConfigVolumeName: // the SPIFFE token source's
			configPath = path.Join(m.MountPath, mutate.ConfigFile)
		}
	}
	env := []string{
		"HOME=" + root, // no shared config files from the machine running the test
		"SSL_CERT_FILE=" + s.PKI.CAFile,
		"AWS_ENDPOINT_URL_STS=" + s.MinIO.Endpoint,
		"AWS_ENDPOINT_URL_S3=" + s.MinIO.Endpoint,
	}
	tokenPath := path.Join(mountPath, mutate.TokenFile)
	localToken := filepath.Join(root, filepath.FromSlash(tokenPath))
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			var err error
			if v, err = downwardValue(pod, e.ValueFrom); err != nil {
				return nil, fmt.Errorf("container %s env %s: %w", container, e.Name, err)
			}
		}
		switch e.Name {
		case mutate.EnvWebIdentityTokenFile:
			if mountPath == "" || v != tokenPath {
				return nil, fmt.Errorf("container %s: %s=%q is not in the %s mount (%q)", container, e.Name, v, mutate.VolumeName, mountPath)
			}
			if err := writeFile(localToken, token); err != nil {
				return nil, fmt.Errorf("write token file: %w", err)
			}
			v = localToken
		case mutate.EnvConfigFile:
			if mountPath == "" || v != configPath {
				break // the container's own file
			}
			config, ok := pod.Annotations[identity.AWSConfig]
			if !ok {
				return nil, fmt.Errorf("container %s: %s=%q but the pod has no %s annotation", container, e.Name, v, identity.AWSConfig)
			}
			config = strings.ReplaceAll(config, " = "+tokenPath+"\n", " = "+localToken+"\n")
			local := filepath.Join(root, filepath.FromSlash(v))
			if err := writeFile(local, config); err != nil {
				return nil, fmt.Errorf("write AWS config file: %w", err)
			}
			if err := writeFile(localToken, token); err != nil {
				return nil, fmt.Errorf("write token file: %w", err)
			}
			v = local
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

func writeFile(name, content string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	return os.WriteFile(name, []byte(content), 0o600)
}

// RunS3Get runs the s3get client (the unmodified AWS SDK's default
// credential chain) with exactly env, reading bucket/key.
func (s *Stack) RunS3Get(ctx context.Context, env []string, bucket, key string) ClientResult {
	return s.runS3Get(ctx, env, bucket, key)
}

// RunS3Put is RunS3Get writing content to bucket/key instead.
func (s *Stack) RunS3Put(ctx context.Context, env []string, bucket, key, content string) ClientResult {
	return s.runS3Get(ctx, env, "-put", content, bucket, key)
}

// RunS3PutWithProfile is RunS3Put with the shared config profile chosen in
// code, as an application picks a role per call.
func (s *Stack) RunS3PutWithProfile(ctx context.Context, env []string, profile, bucket, key, content string) ClientResult {
	return s.runS3Get(ctx, env, "-profile", profile, "-put", content, bucket, key)
}

func (s *Stack) runS3Get(ctx context.Context, env []string, args ...string) ClientResult {
	cmd := exec.CommandContext(ctx, s.Binaries.S3Get, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return ClientResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// RunCLI runs the irsa-webhook binary once (an admin command such as
// doctor) with the admin kubeconfig in $KUBECONFIG and nothing else from the
// environment of the test.
func (s *Stack) RunCLI(ctx context.Context, args ...string) ClientResult {
	return s.RunCLIWithEnv(ctx, nil, args...)
}

// RunCLIWithEnv is RunCLI with env added to that environment.
func (s *Stack) RunCLIWithEnv(ctx context.Context, env []string, args ...string) ClientResult {
	cmd := exec.CommandContext(ctx, s.Binaries.IrsaWebhook, args...)
	cmd.Env = append([]string{"HOME=" + s.Dir, "KUBECONFIG=" + s.APIServer.AdminKubeconfig}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return ClientResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// downwardValue is the value the kubelet gives a valueFrom, for the fields
// the webhook may use.
func downwardValue(pod *corev1.Pod, src *corev1.EnvVarSource) (string, error) {
	if src.FieldRef == nil {
		return "", errors.New("valueFrom other than fieldRef needs a kubelet")
	}
	switch src.FieldRef.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	}
	return "", fmt.Errorf("fieldRef %s needs a kubelet", src.FieldRef.FieldPath)
}
