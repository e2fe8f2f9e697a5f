# Fault tests and the soak run, included by the top-level Makefile. Both use
# the e2e harness (real etcd, kube-apiserver and MinIO on 127.0.0.1, cached
# in $(IRSA_E2E_BIN_DIR)).
#   make faults                            # the fault tests, about 5 minutes warm
#   make faults IRSA_FAULTS_OUTAGE=10s     # a shorter outage for a quicker look
#   make soak DURATION=10m SOAK_OUT=soak-results
FAULTS_TIMEOUT ?= 60m
DURATION ?= 10m
SOAK_OUT ?=

.PHONY: faults
faults: ## Fault tests under load: API server/etcd outage, webhook restart, cert rotation, discovery key rotation, cache race, log hygiene.
	cd e2e && $(GO) test -count=1 -v -timeout $(FAULTS_TIMEOUT) ./faults/

.PHONY: soak
soak: ## Soak the webhook for DURATION (default 10m): load, SA churn, a cert rotation; writes a plot and a summary.
	cd e2e && $(GO) run ./cmd/soak -duration $(DURATION) $(if $(SOAK_OUT),-out $(abspath $(SOAK_OUT)))
