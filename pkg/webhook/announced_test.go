package webhook

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

// Reviews announcing 7 MiB over HTTP/2 and sending a few bytes take no
// buffer for what they announced: the body is read as it arrives.
// (The handler once grew its buffer to Content-Length first: 20 such
// streams took 140 MiB.)
func TestServerAnnouncedBodiesTakeNoMemory(t *testing.T) {
	var started atomic.Int64
	h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: staticServiceAccounts{}}
	s := startServerWith(t, testcerts.ECDSA, h, nil, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	before := liveHeap()
	const streams = 20
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range streams {
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", s.addr}, {":path", MutatePath},
			{"content-type", "application/json"}, {"content-length", strconv.Itoa(MaxRequestBytes)}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(id, false, []byte(`{"apiVersion":`)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if n := started.Load(); n < streams {
			return fmt.Errorf("%d of %d handlers started", n, streams)
		}
		return nil
	})
	grown := int64(liveHeap()) - int64(before)
	t.Logf("heap grew by %d KiB for %d streams announcing %d bytes each", grown>>10, streams, MaxRequestBytes)
	if grown > MaxRequestBytes {
		t.Errorf("heap grew by %d MiB, more than one announced body", grown>>20)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
