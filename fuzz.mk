# Fuzzing. Included by the top-level Makefile.
#
# `go test -fuzz` takes one target at a time, so these targets find every
# Fuzz function under pkg/, cmd/ and internal/ and run them one after the
# other. Seeds live in each package's testdata/fuzz/<FuzzName>/ and run with
# every `go test`; new inputs the fuzzer finds stay in the Go build cache,
# and an input that fails is written to testdata/fuzz/<FuzzName>/ for review.

# How long each target runs in `make fuzz`.
FUZZTIME ?= 30s
# How many inputs each target runs in `make fuzz-smoke` (CI). A count, not
# a duration: go1.26's fuzz coordinator can report its own -fuzztime
# deadline as a failure ("context deadline exceeded", no crasher) when the
# workers are slow to stop on a busy machine (go.dev/issue/75804, fixed in
# go1.27); a count-based budget has no deadline to race.
FUZZ_SMOKE_TIME ?= 1000x
# Bound on minimizing a new or failing input, so a run stays near its time.
FUZZMINIMIZETIME ?= 10s
FUZZ_DIRS := pkg cmd internal

# fuzz-run runs every target for $(1).
define fuzz-run
	@set -e; n=0; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' $(FUZZ_DIRS) | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz: ./$$(dirname $$f) $$t for $(1)"; \
			$(GO) test ./$$(dirname $$f) -run '^$$' -fuzz "^$$t\$$" -fuzztime $(1) -fuzzminimizetime $(FUZZMINIMIZETIME); \
			n=$$((n+1)); \
		done; \
	done; \
	if [ $$n -eq 0 ]; then echo "fuzz: no fuzz targets found"; exit 1; fi; \
	echo "fuzz: $$n targets passed"
endef

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s), one after another.
	$(call fuzz-run,$(FUZZTIME))

.PHONY: fuzz-smoke
fuzz-smoke: ## Short fuzz pass for CI: each target for FUZZ_SMOKE_TIME (default 1000 inputs).
	$(call fuzz-run,$(FUZZ_SMOKE_TIME))
