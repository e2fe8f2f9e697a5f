package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const testSPIFFEID = "spiffe://example.org/ns/team-a/sa/app"

// svidFunc is a Workload API that answers FetchJWTSVID with f.
type svidFunc func(jwtsvid.Params) (*jwtsvid.SVID, error)

func (f svidFunc) FetchJWTSVID(_ context.Context, p jwtsvid.Params) (*jwtsvid.SVID, error) {
	return f(p)
}

// issue signs a JWT-SVID with the world's key, as a SPIRE server with
// jwt_issuer iss would.
func (w *world) issue(p jwtsvid.Params, iss string) (*jwtsvid.SVID, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: w.signAlg, Key: jose.JSONWebKey{Key: w.signKey, KeyID: w.tokenKID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: iss, Subject: p.Subject.String(), Audience: jwt.Audience{p.Audience},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).Serialize()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.tokens = append(w.tokens, raw)
	w.mu.Unlock()
	return jwtsvid.ParseInsecure(raw, []string{p.Audience})
}

func TestRunSPIFFE(t *testing.T) {
	tests := map[string]struct {
		svids    func(w *world) svidFunc
		want     map[string]Status // SPIFFE-chain checks
		wantText string
	}{
		"healthy": {
			svids: func(w *world) svidFunc {
				return func(p jwtsvid.Params) (*jwtsvid.SVID, error) { return w.issue(p, w.issuer) }
			},
			want: map[string]Status{CheckTokenRequest: StatusSkip, CheckWorkloadAPI: StatusPass, CheckSPIFFESVID: StatusPass,
				CheckTokenIssuer: StatusPass, CheckTokenLifetime: StatusSkip, CheckJWKS: StatusPass, CheckTokenSignature: StatusPass},
		},
		"agent unreachable": {
			svids: func(*world) svidFunc {
				return func(jwtsvid.Params) (*jwtsvid.SVID, error) {
					return nil, status.Error(codes.Unavailable, "connection error: dial unix /run/spire/agent.sock: no such file")
				}
			},
			want: map[string]Status{CheckTokenRequest: StatusSkip, CheckWorkloadAPI: StatusFail, CheckSPIFFESVID: StatusSkip,
				CheckTokenIssuer: StatusSkip, CheckTokenLifetime: StatusSkip, CheckJWKS: StatusPass, CheckTokenSignature: StatusSkip},
			wantText: "--workload-api-addr",
		},
		"no entry": {
			svids: func(*world) svidFunc {
				return func(jwtsvid.Params) (*jwtsvid.SVID, error) {
					return nil, status.Error(codes.PermissionDenied, "no identity issued")
				}
			},
			want: map[string]Status{CheckTokenRequest: StatusSkip, CheckWorkloadAPI: StatusPass, CheckSPIFFESVID: StatusFail,
				CheckTokenIssuer: StatusSkip, CheckTokenLifetime: StatusSkip, CheckJWKS: StatusPass, CheckTokenSignature: StatusSkip},
			wantText: "register an entry",
		},
		"jwt_issuer is not the issuer": {
			svids: func(w *world) svidFunc {
				return func(p jwtsvid.Params) (*jwtsvid.SVID, error) { return w.issue(p, "https://spire.example.org") }
			},
			want: map[string]Status{CheckTokenRequest: StatusSkip, CheckWorkloadAPI: StatusPass, CheckSPIFFESVID: StatusPass,
				CheckTokenIssuer: StatusFail, CheckTokenLifetime: StatusSkip, CheckJWKS: StatusPass, CheckTokenSignature: StatusPass},
			wantText: "jwt_issuer",
		},
		"kid not served": {
			svids: func(w *world) svidFunc {
				w.tokenKID = "spire-rotated"
				return func(p jwtsvid.Params) (*jwtsvid.SVID, error) { return w.issue(p, w.issuer) }
			},
			want: map[string]Status{CheckTokenRequest: StatusSkip, CheckWorkloadAPI: StatusPass, CheckSPIFFESVID: StatusPass,
				CheckTokenIssuer: StatusPass, CheckTokenLifetime: StatusSkip, CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: `"spire-rotated"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.sa.Annotations["eks.amazonaws.com/token-source"] = "spiffe"
			w.sa.Annotations["eks.amazonaws.com/spiffe-id"] = testSPIFFEID
			var asked []jwtsvid.Params
			f := tc.svids(w)
			w.cfg.SVIDs = svidFunc(func(p jwtsvid.Params) (*jwtsvid.SVID, error) {
				asked = append(asked, p)
				return f(p)
			})
			var out bytes.Buffer
			report, _ := Run(context.Background(), w.cfg, w.client(), &out)
			got := map[string]Status{}
			var texts []string
			for id := range tc.want {
				c, ok := report.Get(id)
				if !ok {
					t.Errorf("no %s check", id)
					continue
				}
				got[id] = c.Status
				texts = append(texts, c.Message+" "+c.Fix)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s\n%s", diff, out.String())
			}
			if tc.wantText != "" && !strings.Contains(strings.Join(texts, "\n"), tc.wantText) {
				t.Errorf("no check mentions %q:\n%s", tc.wantText, out.String())
			}
			if len(asked) != 1 || asked[0].Audience != "sts.amazonaws.com" || asked[0].Subject.String() != testSPIFFEID {
				t.Errorf("Workload API asked %+v, want one JWT-SVID for sts.amazonaws.com and %s", asked, testSPIFFEID)
			}
			w.checkNoTokenPrinted(out.String())
		})
	}
}
