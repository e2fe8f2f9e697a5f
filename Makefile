# irsa-webhook — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/irsa-webhook
# Build flags shared with the Dockerfile and make image, so neither can rot.
BUILD_FLAGS := -trimpath -ldflags "-s -w"
export CGO_ENABLED ?= 0

.DEFAULT_GOAL := help

include deploy/Makefile.inc
include image.mk
include release.mk
include e2e/Makefile.inc
include e2e/faults.mk
include e2e/bench.mk
include e2e/spiffe.mk
include fuzz.mk

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static binary into bin/.
	$(GO) build $(BUILD_FLAGS) -o $(BIN) ./cmd/irsa-webhook

.PHONY: test
test: lint unit fuzz-smoke bench-smoke manifests-check build-static e2e ## Run every test tier: lint, unit, golden, fuzz and bench smoke, manifests, e2e.

.PHONY: unit
unit: ## Unit, golden and handler tests (no cluster needed).
	$(GO) test -count=1 ./...
	@# The handler pools its buffers between admissions: answered at once,
	@# reviews must not share them, which the race detector sees first
	@# (it needs cgo; .ci/run installs the C compiler).
	CGO_ENABLED=1 $(GO) test -count=1 -race -run 'Concurrent' ./pkg/webhook/

.PHONY: golden
golden: ## Regenerate the golden mutation files; review the diff like code.
	$(GO) test ./pkg/webhook/ -run TestGolden -update

.PHONY: reference
reference: ## Regenerate the README's flag reference from the commands.
	$(GO) test ./cmd/irsa-webhook/ -run TestReadmeFlagReference -update

# Modules checked by lint: the product, the e2e tier (the control-plane build
# modules are only built, from their pinned go.sum).
LINT_MODULES := . e2e

.PHONY: lint
lint: ## gofmt, go vet and go mod tidy must leave nothing to change, in every module.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	@set -e; for m in $(LINT_MODULES); do echo "vet and tidy: $$m"; (cd $$m && $(GO) vet ./... && $(GO) mod tidy -diff); done
