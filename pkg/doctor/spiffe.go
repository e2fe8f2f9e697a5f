package doctor

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// SVIDFetcher is the part of *workloadapi.Client doctor uses.
type SVIDFetcher interface {
	FetchJWTSVID(ctx context.Context, params jwtsvid.Params) (*jwtsvid.SVID, error)
}

// Check IDs of the SPIFFE chain (ServiceAccounts with token-source spiffe).
const (
	CheckWorkloadAPI = "workload-api"
	CheckSPIFFESVID  = "spiffe-svid"
)

func (r *run) spiffe() bool {
	return r.plan != nil && r.plan.TokenSource == identity.TokenSourceSPIFFE
}

// checkSPIFFE stands in for checkToken when the pods get JWT-SVIDs: the
// Workload API is reachable, it issues an SVID for the audience (and the
// annotated SPIFFE ID), and its iss is the issuer AWS trusts. The discovery
// checks then look for its kid.
func (r *run) checkSPIFFE(ctx context.Context) {
	r.skip(CheckTokenRequest, "token-source is spiffe: the token is a JWT-SVID")
	addr := r.cfg.WorkloadAPIAddr
	if addr == "" {
		addr = "$SPIFFE_ENDPOINT_SOCKET"
	}
	fetcher := r.cfg.SVIDs
	if fetcher == nil {
		var opts []workloadapi.ClientOption
		if r.cfg.WorkloadAPIAddr != "" {
			opts = append(opts, workloadapi.WithAddr(r.cfg.WorkloadAPIAddr))
		}
		client, err := workloadapi.New(ctx, opts...)
		if err != nil {
			r.add(CheckWorkloadAPI, StatusFail, "pass --workload-api-addr unix:///path/to/the/agent.sock, or set SPIFFE_ENDPOINT_SOCKET",
				"no Workload API client for %s: %s", addr, oneLine(err))
			r.skipSPIFFE("no Workload API")
			return
		}
		defer client.Close()
		fetcher = client
	}
	var subject spiffeid.ID
	if r.plan.SPIFFE.ID != "" {
		subject = spiffeid.RequireFromString(r.plan.SPIFFE.ID)
	}
	fctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	svid, err := fetcher.FetchJWTSVID(fctx, jwtsvid.Params{Audience: r.plan.Audience, Subject: subject})
	switch {
	case status.Code(err) == codes.PermissionDenied:
		r.add(CheckWorkloadAPI, StatusPass, "", "Workload API at %s answers", addr)
		want := "any identity"
		if r.plan.SPIFFE.ID != "" {
			want = r.plan.SPIFFE.ID
		}
		r.add(CheckSPIFFESVID, StatusFail,
			"register an entry for the workload (spire-server entry create ...) whose selectors match the aws-iam-token-svid sidecar, and run doctor as such a workload",
			"the agent issued no JWT-SVID (%s, audience %s) to doctor's process: %s", want, r.plan.Audience, oneLine(err))
		r.skip(CheckTokenIssuer, "no JWT-SVID")
		r.skip(CheckTokenLifetime, "no JWT-SVID")
		return
	case err != nil:
		r.add(CheckWorkloadAPI, StatusFail, "run doctor where the SPIRE agent's socket is mounted, with --workload-api-addr unix:///path/to/the/agent.sock",
			"Workload API at %s: %s", addr, oneLine(err))
		r.skipSPIFFE("no Workload API")
		return
	}
	r.add(CheckWorkloadAPI, StatusPass, "", "Workload API at %s answers", addr)
	tok, err := parseToken(svid.Marshal())
	if err != nil {
		r.add(CheckSPIFFESVID, StatusFail, "check the SPIRE server's jwt_key_type (rsa-2048 or ec-p256)", "JWT-SVID: %v", err)
		r.skip(CheckTokenIssuer, "no usable JWT-SVID")
		r.skip(CheckTokenLifetime, "no usable JWT-SVID")
		return
	}
	r.tok = tok
	r.add(CheckSPIFFESVID, StatusPass, "", "JWT-SVID issued: sub %s, audience %s, kid %q, alg %s", tok.claims.Subject, r.plan.Audience, tok.kid, tok.alg)
	switch {
	case tok.claims.Issuer == "":
		r.add(CheckTokenIssuer, StatusFail, "set jwt_issuer in the SPIRE server's configuration to the issuer URL registered with AWS",
			"JWT-SVID has no iss claim: AWS cannot find its OpenID provider")
	case r.cfg.Issuer != "" && tok.claims.Issuer != r.cfg.Issuer:
		r.add(CheckTokenIssuer, StatusFail, fmt.Sprintf("set jwt_issuer = %q in the SPIRE server's configuration, or pass the issuer AWS trusts as --issuer", r.cfg.Issuer),
			"JWT-SVID iss is %q, not --issuer %q", tok.claims.Issuer, r.cfg.Issuer)
	default:
		r.add(CheckTokenIssuer, StatusPass, "", "JWT-SVID iss is %q (the SPIRE server's jwt_issuer)", tok.claims.Issuer)
	}
	r.skip(CheckTokenLifetime, "the JWT-SVID lifetime is SPIRE's (default_jwt_svid_ttl or the entry's)")
}

func (r *run) skipSPIFFE(because string) {
	r.skip(CheckSPIFFESVID, because)
	r.skip(CheckTokenIssuer, because)
	r.skip(CheckTokenLifetime, because)
}
