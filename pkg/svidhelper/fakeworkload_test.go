package svidhelper

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeWorkloadAPI is a Workload API server on a unix socket, built on
// go-spiffe's generated service: it issues RS256 JWT-SVIDs for one SPIFFE ID
// and streams the JWT bundle. Like a SPIRE agent it refuses calls without
// the "workload.spiffe.io: true" header, and answers PermissionDenied while
// it has no entry for the caller.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	addr string
	now  func() time.Time

	mu       sync.Mutex
	id       string // "" means no registration entry
	lifetime time.Duration
	key      *rsa.PrivateKey
	kid      string
	issued   []string
	noHeader int
	bundles  chan struct{} // closed and replaced on every key change
}

func startFakeWorkloadAPI(t *testing.T, socketDir string, now func() time.Time) *fakeWorkloadAPI {
	t.Helper()
	f := &fakeWorkloadAPI{now: now, lifetime: time.Hour, bundles: make(chan struct{})}
	f.rotate(t)
	path := filepath.Join(socketDir, "agent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	f.addr = "unix://" + path
	return f
}

// shortDir returns a directory whose unix socket paths fit in sun_path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (f *fakeWorkloadAPI) setID(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.id = id
}

// rotate replaces the signing key and tells bundle watchers.
func (f *fakeWorkloadAPI) rotate(t *testing.T) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key = key
	f.kid = rand.Text()
	close(f.bundles)
	f.bundles = make(chan struct{})
}

func (f *fakeWorkloadAPI) issuedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

func (f *fakeWorkloadAPI) headerRefusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.noHeader
}

func (f *fakeWorkloadAPI) checkHeader(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		f.mu.Lock()
		f.noHeader++
		f.mu.Unlock()
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

func (f *fakeWorkloadAPI) FetchJWTSVID(ctx context.Context, req *workload.JWTSVIDRequest) (*workload.JWTSVIDResponse, error) {
	if err := f.checkHeader(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == "" || (req.SpiffeId != "" && req.SpiffeId != f.id) {
		return nil, status.Error(codes.PermissionDenied, "no identity issued")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: f.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.kid))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// No iat: the real clock checks it, the injected one schedules.
	token, err := jwt.Signed(signer).Claims(jwt.Claims{
		Subject:  f.id,
		Audience: jwt.Audience(req.Audience),
		Expiry:   jwt.NewNumericDate(f.now().Add(f.lifetime)),
	}).Serialize()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	f.issued = append(f.issued, token)
	return &workload.JWTSVIDResponse{Svids: []*workload.JWTSVID{{SpiffeId: f.id, Svid: token}}}, nil
}

func (f *fakeWorkloadAPI) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	if err := f.checkHeader(stream.Context()); err != nil {
		return err
	}
	for {
		f.mu.Lock()
		jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: f.key.Public().(crypto.PublicKey), KeyID: f.kid, Use: "jwt-svid", Algorithm: string(jose.RS256),
		}}})
		changed := f.bundles
		f.mu.Unlock()
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if err := stream.Send(&workload.JWTBundlesResponse{Bundles: map[string][]byte{"example.org": jwks}}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		}
	}
}
