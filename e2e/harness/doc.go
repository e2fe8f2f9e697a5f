// Package harness starts the real parts the end-to-end tier runs against, as
// local processes on 127.0.0.1, with no Docker and no cloud account:
//
//   - etcd and kube-apiserver, built from their Go modules (e2e/build/kube)
//     and cached outside the checkout (BinDir);
//   - the project's own binary as `irsa-webhook discovery serve` (the token
//     issuer's public face) and `irsa-webhook serve` (the webhook), built from
//     this checkout for every run;
//   - MinIO as the STS and S3 peer, an OpenID client of the discovery server.
//
// # Building
//
// Build makes every binary in parallel and prints each phase's duration:
//
//	bins, err := harness.Build(ctx, harness.BuildOptions{OutDir: dir, Progress: os.Stderr})
//
// kube-apiserver, etcd and MinIO are built only when missing from BinDir
// (${IRSA_E2E_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/irsa-webhook/bin}, as
// <name>-<version>); a lock file keeps concurrent runs from building twice.
//
// # Starting a stack
//
// Start brings the parts up in dependency order and returns once the API
// server calls the webhook (a dry-run Pod comes back injected):
//
//	s, err := harness.Start(ctx, harness.Options{Dir: dir, Binaries: bins})
//	defer s.Stop()
//
// In tests, StartForTest does the same in a fresh directory, stops every
// process in t.Cleanup and, when the test failed, prints each process's log
// tail and keeps the directory.
//
// What a Stack sets up:
//   - a throw-away CA (PKI) that signs every serving certificate and the
//     client certificates the API server authenticates;
//   - kube-apiserver with --anonymous-auth=false, --authorization-mode=RBAC,
//     --service-account-issuer set to the discovery server's https URL,
//     --api-audiences=sts.amazonaws.com and an RSA signing key;
//   - the webhook running as user "irsa-webhook", allowed only to
//     get/list/watch ServiceAccounts and Namespaces, registered by RegisterWebhook as a
//     MutatingWebhookConfiguration (url form, the CA as caBundle,
//     failurePolicy Fail, reinvocationPolicy IfNeeded, opt-out label excluded
//     by objectSelector), with --aws-default-region us-east-1 and
//     --sts-regional-endpoints=true;
//   - the discovery server with --key-file (the signing key's public half),
//     or with --from-apiserver as user "irsa-webhook-discovery", bound only
//     to the built-in system:service-account-issuer-discovery ClusterRole;
//   - MinIO trusting the CA, with client ID = the audience, a random client
//     secret, and claim mode on sub: a token is allowed what the policy named
//     after its sub claim (PolicyName, created by AllowServiceAccount) allows,
//     as an IAM trust policy's :sub condition decides; and the object
//     Bucket/ObjectKey holding ObjectContent.
//
// # Handles for fault tests
//
// Every part is a *Process handle (Stop, Kill, Start, Restart, Running,
// LogTail) wrapped with its own readiness wait:
//
//	s.Etcd.Restart(ctx)                   // same ports and data
//	s.APIServer.SigningKey = newKey       // rotate, then
//	s.APIServer.VerifyKeys = []*harness.SigningKey{s.SigningKey, newKey}
//	s.APIServer.Restart(ctx)              // waits for /readyz
//	s.Webhook.Stop(); s.Webhook.Start(ctx) // waits for /readyz
//	s.Discovery.Configure(harness.DiscoverySource{KeyFiles: ...}); s.Discovery.Restart(ctx)
//	s.Webhook.Metric(ctx, "irsa_webhook_service_accounts_cached")
//
// The webhook's serving certificate is in s.WebhookCertDir (tls.crt,
// tls.key) for rotation tests; AtomicCertDir turns it into the layout
// kubelet writes a mounted Secret in, and CertDir.Update swaps in a pair
// from s.NewWebhookCert as kubelet does (one rename of ..data);
// s.ServedCertificate reports what a TLS handshake presents.
//
// s.ReviewClient sends AdmissionReviews straight to the webhook, as another
// API server replica would (also while the Stack's API server is down);
// SendRetrying retries only connections that failed before the request was
// written, and Judge classifies an answer: injected, allowed without
// credentials, denied for a failed lookup, or broken.
//
// # Acting as kubelet and as the application
//
// Without the node tier there is no kubelet: RequestToken does what kubelet does for the projected
// volume (a TokenRequest with the volume's audience and expiration, bound to
// the Pod). ContainerEnv turns a stored container into the process
// environment it would get (exactly its env, the token file placed at the
// mounted path under a root directory, plus AWS_ENDPOINT_URL_STS/S3 pointing
// at MinIO and SSL_CERT_FILE trusting the CA in place of the image's trust
// store), and RunS3Get runs the s3get client (the AWS SDK for Go v2 with
// config.LoadDefaultConfig) with it. RunCLI runs an admin command such as
// doctor with the admin kubeconfig.
//
// # The node tier
//
// Options{Node: true} (with binaries from BuildOptions{Node: true}) adds a
// real node: kube-controller-manager, kube-scheduler, containerd 2.x with
// Debian's runc and CNI plugins, and a kubelet registered as NodeName, so a
// Deployment's Pod really runs and the kubelet writes its projected token.
// Pods reach the host only through the node's own bridge (Node.Net, whose
// host address is the node IP): MinIO is offered there by a proxy
// (Node.MinIOEndpoint, Node.PodEnv), its certificate naming that address.
// Node.Workload is a Deployment of the s3get image (e2e/images) reading
// every interval; RunningPod and WaitLog wait for its Pod and its log (read
// through the API server). Before the node starts, the host state it may
// change is recorded (SnapshotHost); Stop deletes the Pods through the
// kubelet, stops every part, and puts the host back. NodeUnsupported says
// why a machine cannot run one (no root, overlayfs, runc, iptables or CNI
// plugins). kube-proxy (iptables mode) sends a ClusterIP to the Service's
// endpoints and CoreDNS (Node.DNS, the kubelet's clusterDNS, forwarding
// nothing) answers the cluster's Service names and the public names a
// test publishes (CoreDNS.AddHost), so a Pod reaches a Service as in any
// cluster. The Service range is a /24 of its own, routed from the Pods to
// the host; in-cluster clients reach the API server at the kubernetes
// Service's ClusterIP, whose one endpoint is a proxy on the bridge
// (Node.APIServerEndpoint), and the API server calls webhooks registered
// by Service at their endpoints' Pod addresses. kube-proxy --cleanup
// removes its rules at teardown.
//
// # The install as Pods
//
// With Options{Node: true, NoWebhook: true, ServiceAccountIssuer: ...},
// RenderInstall renders one of deploy/overlays with only the product image
// changed (to the image built from the checkout), Install.Apply applies it,
// WaitRollout waits for a Deployment as kubectl rollout status does, and
// Install.Delete deletes exactly the rendered objects. StartIngress plays
// the Ingress in front of the installed discovery Service for the issuer's
// public host (on the bridge for Pods, published in the cluster DNS), and
// MinIO.UseOpenIDProvider points MinIO at it.
//
// # SPIRE
//
// BuildSPIRE builds the SPIRE server, agent and OIDC discovery provider
// (SPIREVersion, from e2e/build/spire) into the same cache. StartSPIRE runs
// a server (sqlite, RSA-2048 CA and JWT keys, the given jwt_issuer,
// join-token attestation) and an agent (disk key manager, unix workload
// attestor, allow_unauthenticated_verifiers so that a discovery server can
// read bundles without an entry) on loopback; CreateEntry registers a
// workload by selectors such as UIDSelector(). NewOIDCProvider and Start run
// SPIRE's own discovery provider, and MinIO.SetOpenIDConfigURL points MinIO
// at it.
//
// # Ports
//
// Every part listens on 127.0.0.1 on ports the harness picks outside the
// kernel's ephemeral range (so no outgoing connection can take them),
// claimed for the test process (so a parallel e2e package skips them) and
// held open until the part starts. A part whose first start still finds
// an address in use is moved to fresh ports and started again; ports.go
// explains the rules. Restarts keep their ports.
//
// Waiting is always on a condition with a bound (WaitFor), never a sleep.
package harness
