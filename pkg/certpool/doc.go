// Package certpool is the one way this module reads CA certificates: a PEM
// bundle (a file, a Secret's ca.crt, a webhook's caBundle) into a
// certificate pool. Unlike x509.CertPool.AppendCertsFromPEM it refuses a
// bundle with anything but certificates in it, so a private key pasted in
// by mistake, or a truncated certificate, is reported instead of skipped.
package certpool
