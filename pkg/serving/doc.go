// Package serving is the one hardened HTTP(S) server of the project: the
// webhook (through pkg/webhook) and the discovery and health servers
// (through pkg/discovery) all run a Server, so their limits cannot drift.
//
//   - TLS: TLSConfig builds the configuration from --tls-min-version and
//     --tls-cipher-suites (AEAD suites only; CBC and SHA-1 refused), with
//     the certificate source and options such as ClientAuth.
//   - Limits: timeouts, header size, HTTP/2 streams, frame size and
//     flow-control windows set to what the API server needs.
//   - Budget: request bodies are counted as they arrive against a share of
//     the memory limit; a request that finds no room is answered 503 with
//     Retry-After, unread.
//   - Connections: past MaxConnections a new connection makes the idlest
//     ones go without losing a request (GOAWAY for HTTP/2, "Connection:
//     close" on a response, or a close of an HTTP/1.1 connection idle
//     with nothing arriving), the largest holder's first; an address that
//     holds half of MaxConnections gets no new one past it while others
//     hold some. TLS handshakes compute MaxHandshakes at a time.
//   - Deadlines survive pauses of the process (SIGSTOP, CPU throttling):
//     a pause does not turn into a closed connection under a request.
//   - Drain on shutdown, and net/http's error log as structured entries.
//
// ClientAuth makes a server complete the TLS handshake only with clients
// that present a certificate from a CA file (re-read when it changes)
// carrying one of the allowed names (irsa-webhook serve --client-ca-file,
// --client-allowed-names).
package serving
