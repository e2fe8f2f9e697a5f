package mutate

// VolumeName is the projected token volume added to the Pod, and the name of
// the mount added to each container.
const VolumeName = "aws-iam-token"

// TokenFile is the file name inside the mount that holds the token.
const TokenFile = "token"

// Environment variables the AWS SDKs and CLI read.
const (
	EnvRoleARN              = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvSTSRegionalEndpoints = "AWS_STS_REGIONAL_ENDPOINTS"
	EnvRegion               = "AWS_REGION"
	EnvDefaultRegion        = "AWS_DEFAULT_REGION"
)

// OSLabel is the well-known node label that names a node's operating system.
const OSLabel = "kubernetes.io/os"
