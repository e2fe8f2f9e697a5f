// Package images builds the e2e tier's container images from this
// checkout, without a container engine (internal/image does the work): the
// s3get workload, which reads an S3 object with the AWS SDK and so carries
// the build machine's CA bundle, and the pause image a real node's
// container runtime starts as each Pod sandbox's PID 1 (e2e/cmd/pause).
//
// Build compiles both static for one platform and writes docker-save
// tarballs that `ctr -n k8s.io images import` accepts, tagged S3GetRef and
// PauseRef. `make e2e-images` runs it through e2e/cmd/images.
package images
