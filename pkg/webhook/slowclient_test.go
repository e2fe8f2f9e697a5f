package webhook

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

// halfOpen opens n TCP connections that start a TLS handshake and never
// finish it: a record header announcing a ClientHello that never comes.
func halfOpen(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}); err != nil {
			t.Fatalf("write: %v", err)
		}
		conns = append(conns, c)
	}
	return conns
}

// slowloris opens n TLS connections that send part of a request's headers
// and then nothing.
func slowloris(t *testing.T, s *testServer, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 20 * time.Second}, Config: &tls.Config{RootCAs: s.ca.Pool(), NextProtos: []string{"http/1.1"}}}
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "POST "+MutatePath+" HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"); err != nil {
			t.Fatalf("write: %v", err)
		}
		conns = append(conns, c)
	}
	return conns
}

// closedByServer waits, at most timeout, for the server to close c: a read
// that ends in EOF or a reset rather than our own deadline.
func closedByServer(c net.Conn, timeout time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // a 408 or an alert before the close
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("connection still open after %s", timeout)
		}
		return nil
	}
}

func (s *testServer) healthy(t *testing.T) {
	t.Helper()
	// A fresh connection: a kept-alive one may be closed by the short idle
	// timeout of these tests just as the request goes out (EOF, not retried
	// for a POST), which says nothing about the server's health.
	s.client.CloseIdleConnections()
	code, review := s.post(t, "application/json", reviewBody(t, "uid-ok", []byte(plainPod)))
	if code != http.StatusOK || !review.Response.Allowed || len(review.Response.Patch) == 0 {
		t.Fatalf("normal request failed: HTTP %d %+v", code, review.Response)
	}
}

// With every connection slot held by slow clients, a normal request still
// gets through once the server drops them, and it does drop them.
func TestServerSurvivesSlowClients(t *testing.T) {
	limits := DefaultLimits()
	limits.ReadHeaderTimeout = 500 * time.Millisecond
	limits.ReadTimeout = time.Second
	limits.IdleTimeout = time.Second
	limits.MaxConnections = 8
	h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}}}
	s := startServerWith(t, testcerts.ECDSA, h, &limits)
	s.client.Timeout = 30 * time.Second

	t.Run("half-open handshakes", func(t *testing.T) {
		// More than MaxConnections: past it, new connections are still
		// accepted (up to twice as many), and those that never sent a
		// ClientHello are closed first.
		conns := halfOpen(t, s.addr, limits.MaxConnections*3/2)
		s.healthy(t)
		for i, c := range conns {
			if err := closedByServer(c, 20*time.Second); err != nil {
				t.Errorf("half-open connection %d: %v", i, err)
			}
		}
	})
	t.Run("slowloris headers", func(t *testing.T) {
		conns := slowloris(t, s, limits.MaxConnections)
		s.healthy(t)
		for i, c := range conns {
			if err := closedByServer(c, 20*time.Second); err != nil {
				t.Errorf("slow connection %d: %v", i, err)
			}
		}
	})
	t.Run("slow body", func(t *testing.T) {
		conns := slowloris(t, s, limits.MaxConnections)
		for _, c := range conns {
			if _, err := io.WriteString(c, "Content-Length: 100000\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
		}
		s.healthy(t)
		for i, c := range conns {
			if err := closedByServer(c, 20*time.Second); err != nil {
				t.Errorf("slow-body connection %d: %v", i, err)
			}
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: s.ca.Pool(), NextProtos: []string{"http/1.1"}}}
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := reviewBody(t, "uid-idle", []byte(plainPod))
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", MutatePath, len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		if err := closedByServer(c, 20*time.Second); err != nil {
			t.Errorf("idle connection: %v", err)
		}
	})
}

// The production limits: a crowd of slow clients does not delay a normal
// request at all (they fit in the connection bound) and is dropped after the
// header timeout.
func TestServerDefaultLimitsDropSlowClients(t *testing.T) {
	h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}}}
	s := startServerWith(t, testcerts.ECDSA, h, nil)
	slow := append(halfOpen(t, s.addr, 50), slowloris(t, s, 50)...)
	s.healthy(t)
	for i, c := range slow {
		if err := closedByServer(c, 4*DefaultLimits().ReadHeaderTimeout); err != nil {
			t.Errorf("slow connection %d: %v", i, err)
		}
	}
	s.healthy(t)
}

func TestServerRefusesHugeHeaders(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(reviewBody(t, "uid-h", []byte(plainPod))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Padding", strings.Repeat("a", 2*DefaultLimits().MaxHeaderBytes))
	resp, err := s.client.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("HTTP %d, want 431", resp.StatusCode)
		}
	}
	s.healthy(t)
}

// The API server speaks HTTP/2 when offered; the per-connection stream
// bound only matters if the server does.
func TestServerSpeaksHTTP2(t *testing.T) {
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
	s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}, ForceAttemptHTTP2: true}
	resp, err := s.client.Post(s.url, "application/json", bytes.NewReader(reviewBody(t, "uid-h2", []byte(plainPod))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
}
