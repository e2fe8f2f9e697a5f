package serving

import (
	"net/http"
	"time"
)

// Limits bound what clients can hold of a server, so that slow, idle,
// half-open or hoarded connections and announced bodies cannot starve the
// API server's requests. docs/security.md ("Serving limits") gives each
// value and why.
type Limits struct {
	// ReadHeaderTimeout bounds the TLS handshake and the request headers
	// (net/http applies the smallest of the read and write timeouts to the
	// handshake).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds the handler and the response.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers (HTTP/1.1 and HTTP/2).
	MaxHeaderBytes int
	// MaxConnections is how many connections are kept open: past it, each
	// new connection makes the server close the idlest ones (see
	// connTable.evict), so that it is served instead of waiting. Twice as
	// many at most are open at any moment; beyond that a new connection is
	// closed at once, as is one past it from an address that holds half of
	// it while others hold some (see connTable.sources).
	MaxConnections int
	// MaxHandshakes bounds the TLS handshakes computing at once (key
	// exchange and signature, between the ClientHello and the server's
	// answer); the others wait, parked, in arrival order. A flood of
	// reconnects then cannot fill the run queue ahead of the requests and
	// readiness checks of connections already open. 0: twice GOMAXPROCS.
	MaxHandshakes int
	// MaxConcurrentStreams bounds the requests in flight on one HTTP/2
	// connection.
	MaxConcurrentStreams int
	// MaxReadFrameSize is the largest HTTP/2 frame read: each connection
	// holds a buffer of this size.
	MaxReadFrameSize int
	// MaxReceiveBufferPerConnection and MaxReceiveBufferPerStream are the
	// HTTP/2 flow-control windows: how much a client may send that no
	// handler has read yet.
	MaxReceiveBufferPerConnection int
	MaxReceiveBufferPerStream     int
	// ShutdownTimeout bounds graceful shutdown: requests in flight finish,
	// new connections are refused.
	ShutdownTimeout time.Duration
}

// DefaultLimits suit a webhook called by the API server: one request per
// stream, bodies of a few KiB (7 MiB at most), a 10 to 30 s timeout, and
// connections kept alive for 90 s.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Longer than the API server's longest webhook timeout (30 s), so
		// the API server gives up first.
		WriteTimeout: 35 * time.Second,
		// The API server's idle keep-alive is 90 s; a longer one here means
		// the client, not the server, closes an idle connection, and a
		// client never races its own close.
		IdleTimeout:          95 * time.Second,
		MaxHeaderBytes:       64 << 10,
		MaxConnections:       1024,
		MaxConcurrentStreams: 100,
		// The RFC's initial frame size; Go's server default is 1 MiB.
		MaxReadFrameSize: 16 << 10,
		// Go's defaults are 1 MiB per connection and per stream: a
		// thousand connections could park a GiB in them.
		MaxReceiveBufferPerConnection: 256 << 10,
		MaxReceiveBufferPerStream:     64 << 10,
		ShutdownTimeout:               30 * time.Second,
	}
}

// http2Config is the HTTP/2 part of l, as net/http (and x/net/http2's
// ServeConn, which reads http.Server.HTTP2) applies it.
func (l Limits) http2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          l.MaxConcurrentStreams,
		MaxReadFrameSize:              l.MaxReadFrameSize,
		MaxReceiveBufferPerConnection: l.MaxReceiveBufferPerConnection,
		MaxReceiveBufferPerStream:     l.MaxReceiveBufferPerStream,
		// HPACK's dynamic table: 4 KiB is the RFC default and all the API
		// server's few headers need.
		MaxDecoderHeaderTableSize: 4 << 10,
		MaxEncoderHeaderTableSize: 4 << 10,
		// A client that reads no byte of what is written to it: per
		// stream, the write deadline is writeTimeout's.
		WriteByteTimeout: l.WriteTimeout,
	}
}
