package mutate

// VolumeName is the projected token volume added to the Pod, and the name of
// the mount added to each container.
const VolumeName = "aws-iam-token"

// TokenFile is the file name inside the mount that holds the token.
const TokenFile = "token"

// ConfigFile is the file name inside the mount that holds the shared AWS
// config file of a Pod whose ServiceAccount grants profiles.
const ConfigFile = "config"

// ConfigVolumeName holds the AWS config file with the SPIFFE token source,
// mounted at ConfigMountPath; otherwise the file is in the token volume.
const ConfigVolumeName = "aws-iam-config"

// Environment variables the AWS SDKs and CLI read.
const (
	EnvRoleARN              = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvSTSRegionalEndpoints = "AWS_STS_REGIONAL_ENDPOINTS"
	EnvRegion               = "AWS_REGION"
	EnvDefaultRegion        = "AWS_DEFAULT_REGION"
	EnvRoleSessionName      = "AWS_ROLE_SESSION_NAME"
	EnvConfigFile           = "AWS_CONFIG_FILE"
	EnvProfile              = "AWS_PROFILE"
)

// OSLabel is the well-known node label that names a node's operating system.
const OSLabel = "kubernetes.io/os"

// Names the SPIFFE token source adds (identity.TokenSourceSPIFFE).
const (
	// SVIDHelperName is the native sidecar that writes the JWT-SVID into the
	// token volume, an emptyDir in memory instead of a projected volume.
	SVIDHelperName = "aws-iam-token-svid"
	// SocketVolumeName holds the SPIRE agent's Workload API socket; only the
	// sidecar mounts it, at SocketMountPath.
	SocketVolumeName = "spiffe-workload-api"
	SocketMountPath  = "/spiffe-workload-api"
	// CSIDriver is the SPIFFE CSI driver, the default way to the socket.
	CSIDriver = "csi.spiffe.io"
	// HelperBinary is the irsa-webhook executable in the helper image (the
	// image's entrypoint). The startup probe runs it directly: the image has
	// no shell.
	HelperBinary = "/irsa-webhook"
)
