// Module e2e is the end-to-end tier: a harness that runs the real control
// plane (etcd, kube-apiserver), the project's own binary and MinIO as the
// STS and S3 peer, the scenario tests against it, and `make demo`.
// It has its own go.mod so none of this reaches the product's dependencies.
module github.com/irsa-webhook/irsa-webhook/e2e

go 1.26.0

replace github.com/irsa-webhook/irsa-webhook => ../
