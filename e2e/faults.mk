# Fault tests and the soak run, included by the top-level Makefile. Both use
# the e2e harness (real etcd, kube-apiserver and MinIO on 127.0.0.1, cached
# in $(IRSA_E2E_BIN_DIR)).
#   make faults                            # the fault tests, about 5 minutes warm
#   make faults IRSA_FAULTS_OUTAGE=10s     # a shorter outage for a quicker look
#   make soak DURATION=10m SOAK_OUT=soak-results
#   make attack ATTACK_HOLD=2m ATTACK_SCALE=4  # then: make attack-report
FAULTS_TIMEOUT ?= 60m
DURATION ?= 10m
SOAK_OUT ?=

.PHONY: faults
faults: ## Fault tests under load: API server/etcd outage, webhook restart, cert rotation, discovery key rotation, cache race, log hygiene.
	cd e2e && $(GO) test -count=1 -v -timeout $(FAULTS_TIMEOUT) ./faults/

.PHONY: soak
soak: ## Soak the webhook for DURATION (default 10m): load, SA churn, a cert rotation; writes a plot and a summary.
	cd e2e && $(GO) run ./cmd/soak -duration $(DURATION) $(if $(SOAK_OUT),-out $(abspath $(SOAK_OUT)))

# The hostile-network attacks held longer and heavier than in make test (10s,
# scale 1): 16 HTTP/2 connections of announced bodies, 256 clients of 6 MiB
# bodies, 4,400 idle keep-alive connections, each held ATTACK_HOLD. The
# numbers go to ATTACK_REPORT; make attack-report writes them into
# docs/security.md.
ATTACK_HOLD ?= 2m
ATTACK_SCALE ?= 4
ATTACK_REPORT ?= $(CURDIR)/bin/hostile.jsonl

.PHONY: attack
attack: ## Hostile-network attacks on the webhook and discovery server, long and heavy (ATTACK_HOLD, ATTACK_SCALE); numbers to ATTACK_REPORT.
	mkdir -p $(dir $(ATTACK_REPORT))
	cd e2e && IRSA_FAULTS_ATTACK_HOLD=$(ATTACK_HOLD) IRSA_FAULTS_ATTACK_SCALE=$(ATTACK_SCALE) IRSA_FAULTS_ATTACK_REPORT=$(ATTACK_REPORT) \
		$(GO) test -count=1 -v -timeout $(FAULTS_TIMEOUT) -run TestHostileNetwork ./faults/

.PHONY: attack-report
attack-report: ## Write the numbers in ATTACK_REPORT into docs/security.md ("Hostile network: measured").
	cd e2e && $(GO) run ./cmd/hostilereport -in $(ATTACK_REPORT) -doc $(CURDIR)/docs/security.md
