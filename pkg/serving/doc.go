// Package serving holds what the HTTPS servers share. ClientAuth makes a
// server complete the TLS handshake only with clients that present a
// certificate from a CA file (re-read when it changes) carrying one of the
// allowed names (irsa-webhook serve --client-ca-file, --client-allowed-names).
package serving
