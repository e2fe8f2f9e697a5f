# The release, from one tag: make release (at a tagged commit) or
# make release RELEASE_VERSION=vX.Y.Z. Included by the top-level Makefile.
RELEASE_VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null)
DIST ?= dist
RELEASE_PLATFORMS := linux/amd64 linux/arm64

.PHONY: release
release: ## Into dist/: static binaries + SHA256SUMS, the image (OCI layout), the chart and install.yaml pinned to its digest.
	@test -n "$(RELEASE_VERSION)" || { echo "HEAD has no tag: make release RELEASE_VERSION=vX.Y.Z"; exit 1; }
	rm -rf $(DIST)
	$(MAKE) image-binaries IMAGE_PLATFORMS="$(RELEASE_PLATFORMS)"
	cd e2e && $(GO) run ./cmd/release --version $(RELEASE_VERSION) --dist $(abspath $(DIST)) \
		$(foreach p,$(RELEASE_PLATFORMS),--binary $(p)=$(abspath $(IMAGE_DIR)/bin/irsa-webhook-$(subst /,-,$(p)))) \
		--revision "$(REVISION)" --source-date-epoch "$(SOURCE_DATE_EPOCH)"

.PHONY: release-test
release-test: ## The release's parts agree (versions, digest pinning, sums), on stand-in binaries; seconds.
	cd e2e && $(GO) test -count=1 ./release/
