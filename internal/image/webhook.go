package image

import "time"

// The product image: the one definition of what it runs and as whom, used
// by cmd/imagebuild's defaults and held to the Dockerfile by a test.
const (
	// WebhookRepository is the image's name; deploy/ points at it.
	WebhookRepository = "ghcr.io/irsa-webhook/irsa-webhook"
	// WebhookEntrypoint is where the binary goes, as in the Dockerfile.
	WebhookEntrypoint = "/irsa-webhook"
	// NonrootUser is distroless's "nonroot", numeric so that a Pod's
	// runAsNonRoot can verify it.
	NonrootUser = "65532:65532"
	// Source is the repository the image is built from.
	Source = "https://github.com/irsa-webhook/irsa-webhook"
)

// WebhookCmd is the default arguments: with no subcommand the binary
// prints its help, so a mistyped Pod spec says what it can run.
var WebhookCmd = []string{"--help"}

// BuildInfo is where and when an image was built from, for its labels.
type BuildInfo struct {
	Title    string
	Version  string
	Revision string
	// Licenses is an SPDX expression; empty leaves the label out.
	Licenses string
	Created  time.Time
}

// Labels returns the org.opencontainers.image.* labels of info, leaving
// out the empty ones.
func (info BuildInfo) Labels() map[string]string {
	l := map[string]string{
		"org.opencontainers.image.source":  Source,
		"org.opencontainers.image.created": info.created().Format(time.RFC3339),
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":    info.Title,
		"org.opencontainers.image.version":  info.Version,
		"org.opencontainers.image.revision": info.Revision,
		"org.opencontainers.image.licenses": info.Licenses,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

func (info BuildInfo) created() time.Time {
	return Spec{Created: info.Created}.created()
}

// WebhookSpec is the product image of binaries (platform -> static
// irsa-webhook binary), with the build machine's CA bundle: the binary's
// doctor and discovery checks fetch public https URLs.
func WebhookSpec(info BuildInfo, binaries map[string]string) Spec {
	if info.Title == "" {
		info.Title = "irsa-webhook"
	}
	ref := WebhookRepository
	if info.Version != "" {
		ref += ":" + info.Version
	}
	return Spec{
		Ref:        ref,
		Binaries:   binaries,
		Entrypoint: WebhookEntrypoint,
		Cmd:        append([]string(nil), WebhookCmd...),
		User:       NonrootUser,
		CACerts:    CACertsPath,
		Labels:     info.Labels(),
		Created:    info.Created,
	}
}
