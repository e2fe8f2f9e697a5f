# SPIFFE tier, included by the top-level Makefile: SPIRE server, agent and
# OIDC discovery provider (v1.13.3, built from e2e/build/spire into the same
# binary cache as the control plane) and the SPIFFE scenarios.
SPIFFE_E2E_TIMEOUT ?= 60m

.PHONY: e2e-spiffe
e2e-spiffe: ## SPIFFE scenarios against a real SPIRE server and agent (first run builds SPIRE, ~10 min cold).
	cd e2e && $(GO) test -count=1 -v -timeout $(SPIFFE_E2E_TIMEOUT) -run 'TestSPIFFE' ./scenarios/

.PHONY: unit-spiffe
unit-spiffe: ## SVID helper, SPIFFE key source and SPIFFE golden cases (no SPIRE needed).
	$(GO) test -count=1 ./pkg/svidhelper/ ./pkg/discovery/ -run 'SPIFFE|Helper|WriteFile|CheckFile|RefreshDelay|Config'
	$(GO) test -count=1 ./pkg/webhook/ -run 'TestGolden/spiffe'
