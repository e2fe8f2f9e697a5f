package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SPIREVersion is what e2e/build/spire/go.mod requires.
const SPIREVersion = "v1.13.3"

// TrustDomain is the SPIFFE trust domain the SPIRE server runs.
const TrustDomain = "example.org"

// SPIREBinaries are the SPIRE executables, cached in BinDir like the
// control plane.
type SPIREBinaries struct {
	Server, Agent, OIDCProvider string
}

// BuildSPIRE builds the SPIRE server, agent and OIDC discovery provider from
// e2e/build/spire into the cache, each only when missing (cold: several
// minutes; cgo for the sqlite datastore).
func BuildSPIRE(ctx context.Context, o BuildOptions) (*SPIREBinaries, error) {
	var err error
	if o.RepoRoot == "" {
		if o.RepoRoot, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create binary cache %s: %w", o.CacheDir, err)
	}
	p := &progress{w: o.Progress}
	module := filepath.Join(o.RepoRoot, "e2e", "build", "spire")
	b := &SPIREBinaries{
		Server:       filepath.Join(o.CacheDir, "spire-server-"+SPIREVersion),
		Agent:        filepath.Join(o.CacheDir, "spire-agent-"+SPIREVersion),
		OIDCProvider: filepath.Join(o.CacheDir, "spire-oidc-discovery-provider-"+SPIREVersion),
	}
	for dest, pkg := range map[string]string{
		b.Server:       "github.com/spiffe/spire/cmd/spire-server",
		b.Agent:        "github.com/spiffe/spire/cmd/spire-agent",
		b.OIDCProvider: "github.com/spiffe/spire/support/oidc-discovery-provider",
	} {
		err := p.cached(filepath.Base(pkg)+" "+SPIREVersion, dest, func(out string) error {
			return goCmd(ctx, module, []string{"CGO_ENABLED=1"}, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		})
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// SPIREOptions configure a SPIRE server and agent.
type SPIREOptions struct {
	// JWTIssuer is the server's jwt_issuer: the iss of every JWT-SVID, and
	// the issuer the OpenID provider's discovery document must name.
	JWTIssuer string
	// DefaultJWTSVIDTTL is the server's default_jwt_svid_ttl (default 5m).
	DefaultJWTSVIDTTL time.Duration
}

// SPIRE is a SPIRE server and one agent on loopback: sqlite datastore,
// RSA-2048 CA and JWT keys, join-token node attestation, the disk key
// manager on the agent (a memory one could not come back after a restart
// with a single-use join token) and the unix workload attestor (no kubelet
// here: entries select on unix:uid or unix:path of a process).
type SPIRE struct {
	Server *Process
	Agent  *Process
	// WorkloadAPIAddr is the agent's Workload API, unix:///path.
	WorkloadAPIAddr string
	// AgentID is the agent's SPIFFE ID, the parent of every entry.
	AgentID string
	// JWTIssuer as configured.
	JWTIssuer string

	bins         *SPIREBinaries
	serverSocket string
	agentSocket  string
}

// StartSPIRE starts a server, waits for it, creates a join token and starts
// an agent with it, and waits until the agent serves the Workload API. dir
// holds data and logs; sockets go to a short temporary directory (unix socket
// paths are limited to about 100 bytes), removed by Stop.
func StartSPIRE(ctx context.Context, bins *SPIREBinaries, dir string, o SPIREOptions) (*SPIRE, error) {
	if o.DefaultJWTSVIDTTL == 0 {
		o.DefaultJWTSVIDTTL = 5 * time.Minute
	}
	sockets, err := os.MkdirTemp("", "spire-")
	if err != nil {
		return nil, fmt.Errorf("spire socket dir: %w", err)
	}
	for _, d := range []string{"server-data", "agent-data", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("spire dir: %w", err)
		}
	}
	sp := &SPIRE{
		bins:            bins,
		JWTIssuer:       o.JWTIssuer,
		serverSocket:    filepath.Join(sockets, "server.sock"),
		agentSocket:     filepath.Join(sockets, "agent.sock"),
		WorkloadAPIAddr: "unix://" + filepath.Join(sockets, "agent.sock"),
	}
	serverConfPath := filepath.Join(dir, "server.conf")
	sp.Server = &Process{
		Name: "spire-server", Path: bins.Server,
		Args:    []string{"run", "-config", serverConfPath},
		LogPath: filepath.Join(dir, "logs", "spire-server.log"),
	}
	sp.Server.UsePorts = func(ports []int) error {
		serverConf := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "DEBUG"
  ca_key_type = "rsa-2048"
  jwt_key_type = "rsa-2048"
  jwt_issuer = %q
  default_jwt_svid_ttl = %q
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = %q
    }
  }
}
`, ports[0], sp.serverSocket, TrustDomain, filepath.Join(dir, "server-data"), o.JWTIssuer, o.DefaultJWTSVIDTTL.String(),
			filepath.Join(dir, "server-data", "datastore.sqlite3"), filepath.Join(dir, "server-data", "keys.json"))
		if err := os.WriteFile(serverConfPath, []byte(serverConf), 0o600); err != nil {
			return fmt.Errorf("spire server config: %w", err)
		}
		return nil
	}
	if err := sp.Server.listenOn(1); err != nil {
		return nil, err
	}
	if err := sp.Server.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 60*time.Second, "spire-server healthcheck", sp.Server, func(ctx context.Context) error {
			_, err := sp.serverCLI(ctx, "healthcheck", "-socketPath", sp.serverSocket)
			return err
		})
	}); err != nil {
		sp.Stop()
		return nil, err
	}
	out, err := sp.serverCLI(ctx, "token", "generate", "-socketPath", sp.serverSocket, "-ttl", "600")
	if err != nil {
		sp.Stop()
		return nil, err
	}
	m := regexp.MustCompile(`Token: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		sp.Stop()
		return nil, fmt.Errorf("spire-server token generate printed no token: %q", out)
	}
	sp.AgentID = "spiffe://" + TrustDomain + "/spire/agent/join_token/" + m[1]

	agentConf := fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "DEBUG"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_domain = %q
  insecure_bootstrap = true
  join_token = %q
  allow_unauthenticated_verifiers = true
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      directory = %q
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, filepath.Join(dir, "agent-data"), sp.Server.Ports[0], sp.agentSocket, TrustDomain, m[1], filepath.Join(dir, "agent-data"))
	agentConfPath := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(agentConfPath, []byte(agentConf), 0o600); err != nil {
		sp.Stop()
		return nil, fmt.Errorf("spire agent config: %w", err)
	}
	sp.Agent = &Process{
		Name: "spire-agent", Path: bins.Agent,
		Args:    []string{"run", "-config", agentConfPath},
		LogPath: filepath.Join(dir, "logs", "spire-agent.log"),
	}
	if err := sp.Agent.Start(); err != nil {
		sp.Stop()
		return nil, err
	}
	if err := waitFor(ctx, 60*time.Second, "spire-agent healthcheck", sp.Agent, func(ctx context.Context) error {
		_, err := run(ctx, bins.Agent, "healthcheck", "-socketPath", sp.agentSocket)
		return err
	}); err != nil {
		sp.Stop()
		return nil, err
	}
	return sp, nil
}

// Entry is a registration entry for a workload of the agent.
type Entry struct {
	SPIFFEID string
	// Selectors such as "unix:uid:1000".
	Selectors []string
	// JWTSVIDTTL, when set, is the entry's JWT-SVID lifetime.
	JWTSVIDTTL time.Duration
}

// CreateEntry registers e under the agent and returns the entry ID. The
// agent learns of it within seconds; callers poll for its effect.
func (sp *SPIRE) CreateEntry(ctx context.Context, e Entry) (string, error) {
	args := []string{"entry", "create", "-socketPath", sp.serverSocket, "-parentID", sp.AgentID, "-spiffeID", e.SPIFFEID}
	for _, s := range e.Selectors {
		args = append(args, "-selector", s)
	}
	if e.JWTSVIDTTL > 0 {
		args = append(args, "-jwtSVIDTTL", strconv.Itoa(int(e.JWTSVIDTTL.Seconds())))
	}
	out, err := sp.serverCLI(ctx, args...)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`Entry ID\s*:\s*(\S+)`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("spire-server entry create printed no entry ID: %q", out)
	}
	return m[1], nil
}

// UIDSelector selects processes running as this test's user.
func UIDSelector() string { return "unix:uid:" + strconv.Itoa(os.Getuid()) }

func (sp *SPIRE) serverCLI(ctx context.Context, args ...string) (string, error) {
	return run(ctx, sp.bins.Server, args...)
}

func run(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Processes lists the running parts, in start order.
func (sp *SPIRE) Processes() []*Process {
	var ps []*Process
	for _, p := range []*Process{sp.Server, sp.Agent} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Stop stops the agent, then the server, and removes the socket directory.
func (sp *SPIRE) Stop() error {
	var errs []error
	ps := sp.Processes()
	for i := len(ps) - 1; i >= 0; i-- {
		if err := ps[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.RemoveAll(filepath.Dir(sp.serverSocket))
	if len(errs) > 0 {
		return fmt.Errorf("stop spire: %v", errs)
	}
	return nil
}

// OIDCProvider is SPIRE's own oidc-discovery-provider, serving the trust
// domain's JWT bundle from the agent's Workload API over https.
type OIDCProvider struct {
	*Process
	// Issuer is its https URL; give it to SPIREOptions.JWTIssuer before the
	// server starts, since JWT-SVIDs carry the server's jwt_issuer.
	Issuer string
	port   int
}

// NewOIDCProvider picks the provider's port, so that its issuer is known
// before the SPIRE server starts; the port stays held until Start.
func NewOIDCProvider() (*OIDCProvider, error) {
	op := &OIDCProvider{Process: &Process{Name: "spire-oidc-discovery-provider"}}
	// No UsePorts: JWT-SVIDs carry the issuer, so the port cannot move.
	if err := op.listenOn(1); err != nil {
		return nil, err
	}
	op.port = op.Ports[0]
	op.Issuer = "https://" + hostPort(op.port)
	return op, nil
}

// Start runs the provider against sp's agent with a serving certificate from
// pki, and waits until it serves a JWKS with keys.
func (op *OIDCProvider) Start(ctx context.Context, sp *SPIRE, pki *PKI, dir string) error {
	certDir, err := pki.ServingCert("spire-oidc")
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`log_level = "DEBUG"
domains = ["127.0.0.1"]
jwt_issuer = %q
serving_cert_file {
  cert_file_path = %q
  key_file_path = %q
  addr = %q
}
workload_api {
  socket_path = %q
  trust_domain = %q
}
`, op.Issuer, filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"), hostPort(op.port), sp.agentSocket, TrustDomain)
	path := filepath.Join(dir, "oidc-provider.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("spire oidc provider config: %w", err)
	}
	op.Path = sp.bins.OIDCProvider
	op.Args = []string{"-config", path}
	op.LogPath = filepath.Join(dir, "logs", "spire-oidc-discovery-provider.log")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}}
	return op.startAndWait(ctx, func(ctx context.Context) error {
		return op.waitKeys(ctx, client)
	})
}

// waitKeys polls the provider until it serves a JWKS with keys.
func (op *OIDCProvider) waitKeys(ctx context.Context, client *http.Client) error {
	return waitFor(ctx, 60*time.Second, "spire oidc provider keys", op.Process, func(ctx context.Context) error {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		body, err := getBody(ctx, client, op.Issuer+"/keys")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &set); err != nil {
			return fmt.Errorf("decode %s/keys: %w", op.Issuer, err)
		}
		if len(set.Keys) == 0 {
			return fmt.Errorf("%s/keys has no keys", op.Issuer)
		}
		return nil
	})
}
