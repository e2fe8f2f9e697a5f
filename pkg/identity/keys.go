package identity

// DefaultPrefix is the annotation prefix used unless --annotation-prefix says
// otherwise. It matches the EKS pod identity webhook, so manifests written for
// it work unchanged.
const DefaultPrefix = "eks.amazonaws.com"

// Annotation names, relative to the prefix ("<prefix>/<name>").
const (
	// RoleARN on a ServiceAccount opts its Pods in: the IAM role to assume.
	RoleARN = "role-arn"
	// Audience on a ServiceAccount overrides the token audience flag.
	Audience = "audience"
	// STSRegionalEndpoints on a ServiceAccount ("true" or "false") overrides
	// the --sts-regional-endpoints flag in both directions.
	STSRegionalEndpoints = "sts-regional-endpoints"
	// TokenExpiration (seconds) on a Pod or a ServiceAccount; the Pod's wins.
	TokenExpiration = "token-expiration"
	// SkipContainers on a Pod: comma-separated container names that get nothing.
	SkipContainers = "skip-containers"
	// SkipPodIdentityWebhook as a Pod label or annotation opts the Pod out.
	// Its presence is what counts, whatever its value, so that it agrees with
	// the webhook configuration's objectSelector (key DoesNotExist).
	SkipPodIdentityWebhook = "skip-pod-identity-webhook"
	// TokenSource on a ServiceAccount says where the web identity token comes
	// from: TokenSourceServiceAccount (the default) or TokenSourceSPIFFE.
	TokenSource = "token-source"
	// SPIFFEID on a Pod or a ServiceAccount (the Pod's wins) picks the SPIFFE
	// ID of the JWT-SVID when the workload has several registration entries;
	// only read with TokenSourceSPIFFE. Absent, the Workload API's default
	// (first) identity is used.
	SPIFFEID = "spiffe-id"
)

// Project annotation names: this project's own features, under the fixed
// ProjectPrefix whatever --annotation-prefix says, so the EKS annotation
// set stays exactly the EKS webhook's.
const (
	// RoleSessionName on a ServiceAccount overrides --role-session-name:
	// SessionNamePod gives each container AWS_ROLE_SESSION_NAME = the Pod's
	// name, so CloudTrail says which Pod made a call; SessionNameNone turns
	// a flag default off.
	RoleSessionName = "irsa-webhook.io/role-session-name"
	// Region on a ServiceAccount sets AWS_REGION and AWS_DEFAULT_REGION,
	// overriding --aws-default-region; a container that sets either keeps
	// its own.
	Region = "irsa-webhook.io/region"
	// Profiles on a ServiceAccount grants its Pods more roles than
	// role-arn, as AWS config profiles: "name=<role ARN>, ...". Each Pod
	// then gets a shared AWS config file (AWS_CONFIG_FILE) with a
	// [default] profile for role-arn and one [profile name] per role; see
	// ParseProfiles.
	Profiles = "irsa-webhook.io/profiles"
	// ContainerProfiles on a Pod sets AWS_PROFILE per container, among the
	// profiles its ServiceAccount grants: "container=profile, ...".
	ContainerProfiles = "irsa-webhook.io/container-profiles"
	// AWSConfig on a Pod is written by the webhook, never read from the
	// user: the content of the AWS config file, which the kubelet projects
	// into the token volume through the downward API.
	AWSConfig = "irsa-webhook.io/aws-config"
)

// ProjectPrefix is the prefix of this project's own annotations.
const ProjectPrefix = "irsa-webhook.io"

// Values of RoleSessionName and of --role-session-name.
const (
	SessionNamePod  = "pod"
	SessionNameNone = "none"
)

// Values of the TokenSource annotation.
const (
	// TokenSourceServiceAccount: a projected Kubernetes service account token.
	TokenSourceServiceAccount = "serviceaccount"
	// TokenSourceSPIFFE: a JWT-SVID from the SPIRE agent's Workload API,
	// written to a shared in-memory volume by a native sidecar.
	TokenSourceSPIFFE = "spiffe"
)

// Token lifetime bounds, in seconds. The API server refuses projected tokens
// shorter than 10 minutes; AWS refuses web identity tokens valid for more
// than a day.
const (
	MinTokenExpiration     int64 = 600
	MaxTokenExpiration     int64 = 86400
	DefaultTokenExpiration int64 = 86400
)

// DefaultAudience is the audience AWS STS expects in web identity tokens.
const DefaultAudience = "sts.amazonaws.com"

// Keys renders annotation names under one prefix.
type Keys struct{ Prefix string }

// Key returns "<prefix>/<name>".
func (k Keys) Key(name string) string { return k.Prefix + "/" + name }
