# Benchmarks, included by the top-level Makefile. `make bench` writes
# docs/benchmarks.md and docs/benchmarks-latency.svg; see that file for what
# is measured. The harness binaries are cached as for `make e2e`.

BENCH_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/irsa-webhook/bin
# golang.org/x/perf has no tagged releases; this is its pseudo-version.
BENCHSTAT_VERSION ?= v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT ?= $(BENCH_BIN)/benchstat-$(BENCHSTAT_VERSION)

# Knobs. Each load step runs BENCH_ROUNDS rounds of BENCH_DURATION, the two
# servers taking turns, each keep-alive round after BENCH_SETTLE of its load
# that is not measured (its connections opening); BENCH_RATES are the fixed
# offered rates (req/s), followed by a saturation step with
# BENCH_MAX_WORKERS concurrent requests; keep-alive steps use at most
# BENCH_MAX_CONNECTIONS connections (0: no bound). BENCH_SA_COUNTS are the cache scale
# sizes, BENCH_PODS the Pods created with each registration (none, the
# floor, the mutating floor, irsa-webhook) by one creator and by
# BENCH_POD_WORKERS concurrent ones, the registrations taking turns every
# BENCH_POD_ROUND Pods, and then BENCH_PODS_PAIRED through each with their creates
# interleaved one by one. BENCH_VARIANT_ENV is the whole environment of a second irsa-webhook
# the load part measures beside it: the GOGC serve ran at before its default
# became 200, with GOMEMLIMIT as the install sets it.
BENCH_PARTS ?= micro,load,pods,scale
BENCH_DURATION ?= 5s
BENCH_SETTLE ?= 1s
BENCH_ROUNDS ?= 4
BENCH_RATES ?= 200,500,1000,2000
BENCH_MAX_WORKERS ?= 32
BENCH_MAX_CONNECTIONS ?= 64
BENCH_SA_COUNTS ?= 1000,10000,100000,300000
BENCH_CREATE_WORKERS ?= 32
BENCH_PODS ?= 3000
BENCH_POD_ROUND ?= 200
BENCH_PODS_PAIRED ?= 6000
BENCH_POD_WORKERS ?= 16
BENCH_VARIANT_ENV ?= GOGC=400,GOMEMLIMIT=268435456
BENCH_COUNT ?= 6
BENCH_TIME ?= 1s
# A note printed with the machine in the report, e.g. that it was shared.
BENCH_NOTE ?=
BENCH_TIMEOUT ?= 60m

$(BENCHSTAT):
	@mkdir -p $(BENCH_BIN)
	GOBIN=$(BENCH_BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	mv $(BENCH_BIN)/benchstat $(BENCHSTAT)

.PHONY: benchstat
benchstat: $(BENCHSTAT) ## Build benchstat from its Go module into the cache.

.PHONY: bench
bench: $(BENCHSTAT) ## Micro-benchmarks, TLS load vs a floor webhook, cache scale, Pod creates; writes docs/benchmarks.md.
	@mkdir -p bin
	cd e2e && $(GO) build -o ../bin/bench ./cmd/bench
	cd e2e && timeout $(BENCH_TIMEOUT) ../bin/bench --benchstat $(BENCHSTAT) \
		--parts $(BENCH_PARTS) --duration $(BENCH_DURATION) --settle $(BENCH_SETTLE) --rounds $(BENCH_ROUNDS) --rates $(BENCH_RATES) \
		--max-workers $(BENCH_MAX_WORKERS) --max-connections $(BENCH_MAX_CONNECTIONS) --sa-counts $(BENCH_SA_COUNTS) \
		--create-workers $(BENCH_CREATE_WORKERS) --pods $(BENCH_PODS) --pods-paired $(BENCH_PODS_PAIRED) --pod-round $(BENCH_POD_ROUND) --pod-workers $(BENCH_POD_WORKERS) \
		--variant-env "$(BENCH_VARIANT_ENV)" \
		--bench-count $(BENCH_COUNT) --bench-time $(BENCH_TIME) --note "$(BENCH_NOTE)"

.PHONY: bench-micro
bench-micro: $(BENCHSTAT) ## Only the handler micro-benchmarks, summarised with benchstat (no report written).
	@out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	$(GO) test -run '^$$' -bench . -skip APIServerPatch -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./pkg/webhook/ ./internal/admissionjson/ ./pkg/mutate/ | tee $$out && \
	$(BENCHSTAT) $$out

.PHONY: bench-smoke
bench-smoke: ## Run every benchmark 100 times to keep them compiling and working (no timing checked).
	$(GO) test -run '^$$' -bench . -benchtime=100x ./pkg/...

# One part of make bench each: the report keeps the other parts' sections
# (and goal rows) as the last run left them, each saying which run measured it.
.PHONY: bench-load bench-pods bench-scale
bench-load: ## Only the load part of make bench (TLS load vs the floor); updates its section of docs/benchmarks.md.
	$(MAKE) bench BENCH_PARTS=load
bench-pods: ## Only the Pod-create part of make bench; updates its section of docs/benchmarks.md.
	$(MAKE) bench BENCH_PARTS=pods
bench-scale: ## Only the cache scale part of make bench; updates its section of docs/benchmarks.md.
	$(MAKE) bench BENCH_PARTS=scale

# No request lost (issue "EOF on reused keep-alive connections"): 32
# closed-loop clients against a server process over HTTP/1.1 keep-alive and
# HTTP/2, without and with SIGSTOP pauses, counting every client error. The
# short variant runs in `make unit`.
NO_REQUEST_LOST_REQUESTS ?= 1000000

.PHONY: no-request-lost
no-request-lost: ## Count client errors over NO_REQUEST_LOST_REQUESTS (default 1M) requests per protocol, with and without server pauses.
	NO_REQUEST_LOST_REQUESTS=$(NO_REQUEST_LOST_REQUESTS) $(GO) test -count=1 -v -timeout 90m -run 'TestNoRequestLost$$' ./pkg/serving/
