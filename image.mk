# Container images, built without a container engine or a base image by
# cmd/imagebuild (internal/image). Included by the top-level Makefile.
IMAGE_DIR := bin/image
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
# The version the chart (and so deploy/) runs, so make image tags the image
# the manifests name.
VERSION ?= $(shell sed -n 's/^appVersion: *//p' charts/irsa-webhook/Chart.yaml)
IMAGE ?= ghcr.io/irsa-webhook/irsa-webhook:$(VERSION)
# Every timestamp in the image is the commit's, never the clock's, so one
# commit built twice gives one digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGEBUILD := $(IMAGE_DIR)/imagebuild
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

IMAGEBUILD_ARGS = $(foreach p,$(IMAGE_PLATFORMS),--binary $(p)=$(IMAGE_DIR)/bin/irsa-webhook-$(subst /,-,$(p))) \
	--ref $(IMAGE) --version $(VERSION) --revision "$(REVISION)" --source-date-epoch "$(SOURCE_DATE_EPOCH)"

.PHONY: imagebuild
imagebuild:
	@mkdir -p $(IMAGE_DIR)
	$(GO) build -o $(IMAGEBUILD) ./cmd/imagebuild

.PHONY: image-binaries
image-binaries: ## Cross-compile the static binary for each of IMAGE_PLATFORMS into bin/image/bin/.
	@mkdir -p $(IMAGE_DIR)/bin
	@set -e; for p in $(IMAGE_PLATFORMS); do \
		out=$(IMAGE_DIR)/bin/irsa-webhook-$${p//\//-}; \
		echo "GOOS=$${p%%/*} GOARCH=$${p##*/} go build -o $$out"; \
		GOOS=$${p%%/*} GOARCH=$${p##*/} CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $$out ./cmd/irsa-webhook; \
		$(GO) version -m $$out | grep -q 'CGO_ENABLED=0' || { echo "$$out is not static"; exit 1; }; \
	done

.PHONY: image
image: image-binaries imagebuild ## Build the image (IMAGE_PLATFORMS) without a container engine: bin/image/oci/ and bin/image/irsa-webhook.tar.
	$(IMAGEBUILD) $(IMAGEBUILD_ARGS) --oci-dir $(IMAGE_DIR)/oci --tarball $(IMAGE_DIR)/irsa-webhook.tar

.PHONY: image-push
image-push: image-binaries imagebuild ## Push the image index to IMAGE=registry/name:tag (docker config credentials).
	$(IMAGEBUILD) $(IMAGEBUILD_ARGS) --push

.PHONY: e2e-images
e2e-images: ## The e2e workload and pause images for this machine: bin/image/s3get.tar, bin/image/pause.tar.
	cd e2e && $(GO) run ./cmd/images --out ../$(IMAGE_DIR) --source-date-epoch "$(SOURCE_DATE_EPOCH)"

.PHONY: image-docker
image-docker: ## Build the image with docker or podman from the Dockerfile (IMAGE=name:tag).
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
		echo "no docker or podman found: make image builds the same image without one"; exit 1; fi
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { \
		echo "$(CONTAINER_ENGINE) is installed but its daemon is not reachable: start it, or run 'make image'"; exit 1; }
	$(CONTAINER_ENGINE) build -t $(IMAGE) .
