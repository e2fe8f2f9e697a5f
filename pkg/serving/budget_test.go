package serving

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A handler that stops reading a body and closes it (a review refused as
// busy, too large or undecodable) leaves the rest of the body unread on a
// kept-alive HTTP/1.1 connection: the server must close the connection or
// discard those bytes, never parse them as the next request (a 431 or 400
// answered to a request nobody sent, and a lost one in its place).
func TestEarlyClosedBodyDoesNotBecomeNextRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.ReadFull(r.Body, make([]byte, 1))
			r.Body.Close()
		}
		fmt.Fprint(w, r.Method)
	})
	ts := start(t, &Server{Handler: h, Budget: NewBudget(32<<20, 7<<20, time.Second)}, true)
	for _, size := range []int{64 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("body=%dKiB", size>>10), func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			var req bytes.Buffer
			fmt.Fprintf(&req, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
			req.Write(bytes.Repeat([]byte("x"), size))
			req.WriteString("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
			go func() { _, _ = c.Write(req.Bytes()) }()

			br := bufio.NewReader(c)
			for i, want := range []string{"POST", "GET"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					if i == 0 {
						t.Fatalf("first response: %v", err)
					}
					return // the server closed the connection: fine
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != want {
					t.Fatalf("response %d: HTTP %d %q, want 200 %q", i+1, resp.StatusCode, b, want)
				}
				if resp.Close {
					return
				}
			}
		})
	}
}

// Small bodies do not queue behind big ones: while a big body holds the
// shared part of the budget and another waits for it, a small one is
// served from the reserve at once.
func TestSmallBodiesDoNotWaitBehindBig(t *testing.T) {
	const big = 1 << 20
	entered, release := make(chan struct{}, 4), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if isBusy(err) {
			WriteBusy(w)
			return
		}
		if len(b) == big-1 && r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	// No more budget than one big body and the reserve.
	b := NewBudget(0, big, 3*time.Second)
	ts := start(t, &Server{Handler: h, Budget: b}, false)
	c := ts.client(false)
	post := func(size int, hold bool) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, ts.url("/"), bytes.NewReader(make([]byte, size)))
		if hold {
			req.Header.Set("X-Hold", "1")
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	held := make(chan int, 1)
	go func() { code, _ := post(big-1, true); held <- code }()
	<-entered
	waiting := make(chan int, 1)
	go func() { code, _ := post(big-1, false); waiting <- code }()
	// The second big body waits for the shared part (FIFO): wait until it
	// is queued, that is until the shared part has no room for a chunk.
	eventually(t, 10*time.Second, "the second big body to wait", func() bool {
		if b.shared.TryAcquire(1) {
			b.shared.Release(1)
			return false
		}
		return true
	})
	for i := range 8 {
		code, err := post(64<<10, false)
		if err != nil || code != http.StatusOK {
			t.Fatalf("small request %d behind big ones: HTTP %d, %v; want 200", i, code, err)
		}
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Errorf("held big body: HTTP %d, want 200", code)
	}
	if code := <-waiting; code != http.StatusOK && code != http.StatusServiceUnavailable {
		t.Errorf("waiting big body: HTTP %d, want 200 or 503", code)
	}
}
