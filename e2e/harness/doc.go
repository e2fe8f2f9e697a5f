// Package harness starts the real parts the end-to-end tier runs against, as
// local processes on 127.0.0.1: etcd, kube-apiserver, the project's own
// irsa-webhook binary (serve and discovery serve) and MinIO as the STS and S3
// peer. The API is documented here once it settles.
package harness
