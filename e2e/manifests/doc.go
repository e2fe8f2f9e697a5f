// Package manifests holds the tests of the install manifests: the Helm
// chart charts/irsa-webhook, their one source, over a matrix of documented
// values, and deploy/ (kustomize directories and deploy/install.yaml), which
// is the chart rendered with fixed values. They render with helm built from
// its module, decode each object strictly into the real API types
// (k8s.io/api, cert-manager's, prometheus-operator's), and check that the
// objects agree with each other and with the binary's flags. apply_test.go
// applies them to a real API server.
package manifests
