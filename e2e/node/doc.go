// Package node holds the end-to-end tests that run real Pods: each starts
// a Stack with the node tier (kube-controller-manager, kube-scheduler,
// containerd with runc and the CNI bridge, a kubelet), so that a
// Deployment's Pod is scheduled and run, the kubelet writes the webhook's
// projected token, and the AWS SDK in the container reads from MinIO; and
// the project's own install running there as Pods (install_test.go). The
// tests need root, overlayfs, runc, iptables and the CNI plugins; without
// them every test is skipped with the reason.
package node
