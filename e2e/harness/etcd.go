package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Etcd is the API server's storage: one member on 127.0.0.1, plain HTTP.
type Etcd struct {
	*Process
	ClientURL string
}

func newEtcd(bin, dir, logDir string) (*Etcd, error) {
	e := &Etcd{Process: &Process{Name: "etcd", Path: bin, LogPath: filepath.Join(logDir, "etcd.log")}}
	e.UsePorts = func(ports []int) error {
		client, peer := "http://"+hostPort(ports[0]), "http://"+hostPort(ports[1])
		e.ClientURL = client
		e.Args = []string{
			"--name=e2e",
			"--data-dir=" + filepath.Join(dir, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=e2e=" + peer,
			"--unsafe-no-fsync", // a test cluster needs speed, not durability
			"--log-level=warn",
		}
		return nil
	}
	if err := e.listenOn(2); err != nil {
		return nil, err
	}
	return e, nil
}

// Start starts etcd and waits for /health.
func (e *Etcd) Start(ctx context.Context) error {
	return e.startAndWait(ctx, e.WaitReady)
}

// Restart stops and starts etcd on the same ports and data.
func (e *Etcd) Restart(ctx context.Context) error {
	if err := e.Process.Stop(); err != nil {
		return err
	}
	return e.Start(ctx)
}

// WaitReady polls /health until etcd reports itself healthy.
func (e *Etcd) WaitReady(ctx context.Context) error {
	return waitFor(ctx, 60*time.Second, "etcd /health", e.Process, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ClientURL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}
