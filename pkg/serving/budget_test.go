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
