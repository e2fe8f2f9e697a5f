package doctor

import (
	"encoding/json"
	"fmt"
	"io"
)

// Status is the outcome of one check.
type Status string

// Statuses. Only StatusFail makes the run fail.
const (
	StatusPass Status = "PASS"
	StatusFail Status = "FAIL"
	// StatusWarn: something is off or could not be checked from where
	// doctor runs, but it does not by itself stop pods getting credentials.
	StatusWarn Status = "WARN"
	// StatusSkip: not checked because a check it depends on failed.
	StatusSkip Status = "SKIP"
)

// Check IDs, one per link of the chain, stable for scripts and tests.
const (
	CheckServiceAccount       = "service-account"
	CheckRoleARN              = "role-arn"
	CheckProfiles             = "profiles"
	CheckSessionName          = "session-name"
	CheckRolePolicy           = "role-policy"
	CheckWebhookConfiguration = "webhook-configuration"
	CheckWebhookCABundle      = "webhook-ca-bundle"
	CheckTokenRequest         = "token-request"
	CheckTokenIssuer          = "token-issuer"
	CheckTokenLifetime        = "token-lifetime"
	CheckDiscoveryDocument    = "discovery-document"
	CheckDiscoveryIssuer      = "discovery-issuer"
	CheckJWKS                 = "jwks"
	CheckTokenSignature       = "token-signature"
	// With --bucket: the documents `discovery publish` wrote to S3.
	CheckBucketDocument  = "bucket-document"
	CheckBucketJWKS      = "bucket-jwks"
	CheckBucketSignature = "bucket-token-signature"
)

// Check is one line of the checklist.
type Check struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Message says what was checked and what was found.
	Message string `json:"message"`
	// Fix says what to do; set on failures and warnings.
	Fix string `json:"fix,omitempty"`
}

// Report is the whole checklist.
type Report struct {
	Namespace      string  `json:"namespace"`
	ServiceAccount string  `json:"serviceAccount"`
	Checks         []Check `json:"checks"`
	Failed         int     `json:"failed"`
	Warnings       int     `json:"warnings"`
}

// Get returns the first check with id, and whether there is one.
func (r *Report) Get(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// writeCheck prints one checklist line, and its fix on the next line.
func writeCheck(w io.Writer, c Check) {
	fmt.Fprintf(w, "%-4s  %-22s  %s\n", c.Status, c.ID, c.Message)
	if c.Fix != "" {
		fmt.Fprintf(w, "      %-22s  fix: %s\n", "", c.Fix)
	}
}

// writeSummary ends the text checklist.
func writeSummary(w io.Writer, r *Report) {
	switch {
	case r.Failed > 0:
		fmt.Fprintf(w, "\n%d of %d checks failed; fix the first failure first, later ones often follow from it.\n", r.Failed, len(r.Checks))
	case r.Warnings > 0:
		fmt.Fprintf(w, "\nno check failed; %d warning(s).\n", r.Warnings)
	default:
		fmt.Fprintf(w, "\nall %d checks passed.\n", len(r.Checks))
	}
}

func writeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}
