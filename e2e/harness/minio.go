package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/madmin-go/v3"
)

// Region is the AWS region MinIO answers as and the webhook injects.
const Region = "us-east-1"

// Test object every scenario reads, as in the public IRSA walkthroughs.
const (
	Bucket        = "irsa-e2e"
	ObjectKey     = "test.txt"
	ObjectContent = "oidc-tutorial file"
)

// MinIO is the STS and S3 peer: a MinIO server that trusts the discovery
// server as its OpenID provider, with the token audience as client ID and
// the token's sub claim naming the policy, so that access is decided per
// ServiceAccount as an IAM trust policy's :sub condition decides it.
type MinIO struct {
	*Process
	// Endpoint is the https URL of both STS and S3.
	Endpoint string

	rootUser, rootPassword string
	httpClient             *http.Client
	admin                  *madmin.AdminClient
	s3                     *s3.Client
}

func newMinIO(bin string, pki *PKI, dir, logDir, configURL, clientID string, extraIPs ...net.IP) (*MinIO, error) {
	serving, err := pki.ServingCert("minio", extraIPs...)
	if err != nil {
		return nil, err
	}
	// MinIO's --certs-dir layout: public.crt, private.key, CAs/ to trust.
	certs := filepath.Join(dir, "minio-certs")
	if err := os.MkdirAll(filepath.Join(certs, "CAs"), 0o700); err != nil {
		return nil, fmt.Errorf("minio certs dir: %w", err)
	}
	for src, dst := range map[string]string{
		filepath.Join(serving, "tls.crt"): filepath.Join(certs, "public.crt"),
		filepath.Join(serving, "tls.key"): filepath.Join(certs, "private.key"),
		pki.CAFile:                        filepath.Join(certs, "CAs", "e2e-ca.crt"),
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("minio certs dir: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return nil, fmt.Errorf("minio certs dir: %w", err)
		}
	}
	home := filepath.Join(dir, "minio-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("minio home: %w", err)
	}
	m := &MinIO{
		rootUser:     "e2e-root",
		rootPassword: randomHex(20),
		httpClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}},
	}
	m.Process = &Process{
		Name: "minio",
		Path: bin,
		Env: []string{
			"HOME=" + home,
			"SSL_CERT_FILE=" + pki.CAFile,
			"MINIO_ROOT_USER=" + m.rootUser,
			"MINIO_ROOT_PASSWORD=" + m.rootPassword,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
			"MINIO_REGION=" + Region,
			"MINIO_IDENTITY_OPENID_CONFIG_URL=" + configURL,
			"MINIO_IDENTITY_OPENID_CLIENT_ID=" + clientID,
			// Without a client secret MinIO also accepts HS256 tokens signed
			// with an empty key: always set a random one.
			"MINIO_IDENTITY_OPENID_CLIENT_SECRET=" + randomHex(24),
			"MINIO_IDENTITY_OPENID_CLAIM_NAME=sub",
		},
		LogPath: filepath.Join(logDir, "minio.log"),
	}
	m.UsePorts = func(ports []int) error {
		api, console := minioPorts(ports)
		m.Endpoint = "https://" + hostPort(api)
		m.Args = []string{
			"server",
			"--address=" + hostPort(api),
			"--console-address=" + hostPort(console),
			"--certs-dir=" + certs,
			"--quiet",
			filepath.Join(dir, "minio-data"),
		}
		admin, err := madmin.New(hostPort(api), m.rootUser, m.rootPassword, true)
		if err != nil {
			return fmt.Errorf("minio admin client: %w", err)
		}
		admin.SetCustomTransport(m.httpClient.Transport)
		m.admin, m.s3 = admin, nil // RootS3 makes a new one for Endpoint
		return nil
	}
	if err := m.listenOn(2); err != nil {
		return nil, err
	}
	return m, nil
}

// minioDefaultConsolePort is MinIO's console port when it has none. With the
// console off (MINIO_BROWSER=off) MinIO ignores --console-address but still
// compares its API port with this one, and refuses to start when they match.
const minioDefaultConsolePort = 13333

// minioPorts chooses MinIO's API and console ports from two reserved ones,
// keeping the API off minioDefaultConsolePort.
func minioPorts(ports []int) (api, console int) {
	if ports[0] == minioDefaultConsolePort {
		return ports[1], ports[0]
	}
	return ports[0], ports[1]
}

// Start starts MinIO and waits until it serves requests.
func (m *MinIO) Start(ctx context.Context) error {
	return m.startAndWait(ctx, m.WaitReady)
}

// WaitReady polls MinIO's readiness endpoint.
func (m *MinIO) WaitReady(ctx context.Context) error {
	return waitFor(ctx, 60*time.Second, "minio /minio/health/ready", m.Process, func(ctx context.Context) error {
		return httpOK(ctx, m.httpClient, m.Endpoint+"/minio/health/ready")
	})
}

// HTTPClient trusts the Stack's CA.
func (m *MinIO) HTTPClient() *http.Client { return m.httpClient }

// RootS3 is an S3 client with MinIO's root credentials, for setting up
// buckets; the scenarios never use it to read.
func (m *MinIO) RootS3() *s3.Client {
	if m.s3 == nil {
		m.s3 = s3.New(s3.Options{
			Region:       Region,
			BaseEndpoint: aws.String(m.Endpoint),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(m.rootUser, m.rootPassword, ""),
			HTTPClient:   m.httpClient,
		})
	}
	return m.s3
}

// RootEnv is the environment an AWS SDK process needs to act as MinIO's
// root user (the way a bootstrap publisher gets static credentials from a
// Secret): its keys, a region, and trust in the Stack's CA.
func (m *MinIO) RootEnv(caFile string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.rootUser, "AWS_SECRET_ACCESS_KEY=" + m.rootPassword,
		"AWS_REGION=" + Region, "SSL_CERT_FILE=" + caFile,
	}
}

// PutObject creates the bucket if needed and writes key with content.
func (m *MinIO) PutObject(ctx context.Context, bucket, key, content string) error {
	c := m.RootS3()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte(content))}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// PolicyName is the MinIO policy that a token of this ServiceAccount maps
// to: its sub claim.
func PolicyName(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// AllowServiceAccount creates the policy named after the ServiceAccount's
// sub claim, allowing it to read every object of bucket. This plays the part
// of the IAM role's trust policy and permissions.
func (m *MinIO) AllowServiceAccount(ctx context.Context, namespace, serviceAccount, bucket string) error {
	return m.AllowSubject(ctx, PolicyName(namespace, serviceAccount), bucket)
}

// AllowSubject creates the policy named after a token's sub claim (a
// ServiceAccount's, or a SPIFFE ID), allowing it to read every object of
// bucket.
func (m *MinIO) AllowSubject(ctx context.Context, name, bucket string) error {
	doc, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":   "Allow",
			"Action":   []string{"s3:GetObject"},
			"Resource": []string{"arn:aws:s3:::" + bucket + "/*"},
		}},
	})
	if err != nil {
		return err
	}
	if err := m.admin.AddCannedPolicy(ctx, name, doc); err != nil {
		return fmt.Errorf("add minio policy %s: %w", name, err)
	}
	return nil
}

// SetPolicy creates or replaces the policy name (a token's sub claim, see
// PolicyName) with the policy document doc.
func (m *MinIO) SetPolicy(ctx context.Context, name string, doc []byte) error {
	if err := m.admin.AddCannedPolicy(ctx, name, doc); err != nil {
		return fmt.Errorf("add minio policy %s: %w", name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// Restart stops and starts MinIO on the same port and data.
func (m *MinIO) Restart(ctx context.Context) error {
	if err := m.Process.Stop(); err != nil {
		return err
	}
	return m.Start(ctx)
}

// SetOpenIDConfigURL points MinIO at another OpenID provider's discovery
// document from its next Start or Restart.
func (m *MinIO) SetOpenIDConfigURL(u string) {
	const key = "MINIO_IDENTITY_OPENID_CONFIG_URL="
	for i, e := range m.Process.Env {
		if strings.HasPrefix(e, key) {
			m.Process.Env[i] = key + u
		}
	}
}
