// Package manifests holds the tests of the install manifests: deploy/ (base
// and overlays), deploy/install.yaml and certs/. They render every overlay
// with kustomize's own library, decode each object strictly into the real
// API types (k8s.io/api, cert-manager's), and check that the objects agree
// with each other and with the binary's flags. apply_test.go applies them to
// a real API server.
package manifests
