// Package image builds the project's container images without a container
// engine or a base image: each is one layer on an empty image holding a
// static binary, /etc/passwd and /etc/group for the user it runs as, and
// optionally the build machine's CA bundle, so the image is exactly what
// the Dockerfile's distroless stage would give, minus what nothing uses.
//
// Build turns a Spec into a multi-platform image index; WriteOCILayout,
// WriteDockerTarball and Push put it where it is needed: an OCI layout
// directory, a `docker save` tarball for one platform (what `docker load`
// and `ctr images import` accept), or a registry.
//
// Builds are reproducible: every timestamp is Spec.Created (the commit time
// or SOURCE_DATE_EPOCH, never the clock), file owners and modes are fixed
// and entries sorted, so one commit built twice gives one index digest.
//
// WebhookSpec is the product image, the one place its user, entrypoint and
// arguments are defined; a test holds the Dockerfile to the same. Config is
// the flag set of cmd/imagebuild, which builds every image of the project.
package image
