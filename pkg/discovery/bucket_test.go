package discovery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// memBucket records what a Mirror writes; failing makes every Put fail.
type memBucket struct {
	mu      sync.Mutex
	objects map[string]object
	puts    []string
	failing error
}

type object struct {
	body                      string
	contentType, cacheControl string
}

func (b *memBucket) Put(_ context.Context, key string, body []byte, ct, cc string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failing != nil {
		return b.failing
	}
	if b.objects == nil {
		b.objects = map[string]object{}
	}
	b.objects[key] = object{string(body), ct, cc}
	b.puts = append(b.puts, key)
	return nil
}

// The bucket gets the bytes and headers the Handler serves, at the keys
// below the prefix, the JWKS before the configuration that names it; an
// unchanged key set writes nothing; a new one is written again.
func TestMirrorWritesWhatTheHandlerServes(t *testing.T) {
	files := keyFiles(t)
	pub := publisherWith(t, PublisherOptions{}, files[0])
	b := &memBucket{}
	m := &Mirror{Publisher: pub, Bucket: b, Prefix: "/clusters/prod/"}
	if err := m.Ready(); err == nil {
		t.Error("ready before anything was published")
	}
	if wrote, err := m.Sync(context.Background()); err != nil || !wrote {
		t.Fatalf("first sync: wrote %t, %v", wrote, err)
	}
	wantKeys := []string{"clusters/prod/openid/v1/jwks", "clusters/prod/keys.json", "clusters/prod/.well-known/openid-configuration"}
	if diff := cmp.Diff(wantKeys, b.puts); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	h := NewHandler(pub, nil)
	for key, path := range map[string]string{wantKeys[0]: JWKSPath, wantKeys[1]: LegacyJWKSPath, wantKeys[2]: ConfigPath} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://oidc.example.com/cluster-1"+path, nil))
		want := object{rec.Body.String(), rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control")}
		if rec.Code != http.StatusOK || b.objects[key] != want {
			t.Errorf("%s: bucket holds %+v, the handler serves %d %+v", key, b.objects[key], rec.Code, want)
		}
	}
	if err := m.Ready(); err != nil {
		t.Errorf("not ready after publishing: %v", err)
	}

	if wrote, err := m.Sync(context.Background()); err != nil || wrote {
		t.Errorf("unchanged keys: wrote %t, %v; want nothing written", wrote, err)
	}
	if _, err := pub.Publish(jwksFromFiles(t, files[0], files[1])); err != nil {
		t.Fatal(err)
	}
	if wrote, err := m.Sync(context.Background()); err != nil || !wrote {
		t.Fatalf("rotated keys: wrote %t, %v", wrote, err)
	}
	if docs := pub.Documents(); b.objects[wantKeys[0]].body != string(docs.JWKS) || len(docs.KeyIDs) != 2 {
		t.Errorf("bucket JWKS is not the rotated set of %d keys", len(docs.KeyIDs))
	}
}

// A failed write is reported, makes the mirror unready, and is retried in
// whole at the next sync.
func TestMirrorRetriesFailedWrites(t *testing.T) {
	pub := publisherWith(t, PublisherOptions{}, keyFiles(t)[0])
	b := &memBucket{failing: errors.New("AccessDenied")}
	m := &Mirror{Publisher: pub, Bucket: b}
	if _, err := m.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("sync error %v, want the bucket's", err)
	}
	if err := m.Ready(); err == nil {
		t.Error("ready after a failed write")
	}
	b.failing = nil
	if wrote, err := m.Sync(context.Background()); err != nil || !wrote || len(b.puts) != 3 {
		t.Fatalf("retry: wrote %t, %v, %d puts", wrote, err, len(b.puts))
	}
	if b.puts[2] != ".well-known/openid-configuration" {
		t.Errorf("keys at the bucket's root: %v", b.puts)
	}
}

// Before the source has loaded keys there is nothing to write; after
// MaxStaleness without a sync the mirror is unready.
func TestMirrorBeforeKeysAndStale(t *testing.T) {
	now := time.Unix(1e9, 0)
	pub := publisherWith(t, PublisherOptions{})
	m := &Mirror{Publisher: pub, Bucket: &memBucket{}, MaxStaleness: time.Minute, Now: func() time.Time { return now }}
	if _, err := m.Sync(context.Background()); err == nil {
		t.Error("sync without documents succeeded")
	}
	if _, err := pub.Publish(jwksFromFiles(t, keyFiles(t)[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if err := m.Ready(); err == nil || !strings.Contains(err.Error(), "ago") {
		t.Errorf("ready %v after two minutes without a sync, want stale", err)
	}
}

func TestValidateBucketName(t *testing.T) {
	for name, ok := range map[string]bool{
		"oidc-prod": true, "a.b.c": true, "abc": true, "ab": false, "Oidc": false, "-oidc": false, "oidc-": false,
		"oidc_prod": false, strings.Repeat("a", 64): false, "oidc prod": false,
	} {
		if err := ValidateBucketName(name); (err == nil) != ok {
			t.Errorf("ValidateBucketName(%q) = %v, want ok %t", name, err, ok)
		}
	}
}

// keyFiles are two different signing keys' test files.
func keyFiles(t *testing.T) []string {
	t.Helper()
	return []string{"rsa.pub", "rsa-rotated.pub"}
}
