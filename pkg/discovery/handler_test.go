package discovery

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// goldenKeys are the keys behind the golden documents: a public RSA key,
// a P-256 private key (served by its public half) and a P-384 public key.
var goldenKeys = []string{"rsa.pub", "ec256-sec1.key", "ec384.pub"}

func readGolden(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	return string(data)
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	pub := publisherWith(t, PublisherOptions{Metrics: metrics}, goldenKeys...)
	srv := httptest.NewServer(NewHandler(pub, metrics))
	defer srv.Close()
	docs := pub.Documents()
	config, jwks := readGolden(t, "export/.well-known/openid-configuration"), readGolden(t, "export/openid/v1/jwks")

	type response struct {
		Status  int
		Headers map[string]string
		Body    string
	}
	configHeaders := map[string]string{
		"Content-Type": "application/json", "Cache-Control": "public, max-age=300", "Etag": docs.ConfigETag,
		"Content-Length": itoa(len(config)), "X-Content-Type-Options": "nosniff",
	}
	jwksHeaders := map[string]string{
		"Content-Type": "application/jwk-set+json", "Cache-Control": "public, max-age=300", "Etag": docs.JWKSETag,
		"Content-Length": itoa(len(jwks)), "X-Content-Type-Options": "nosniff",
	}
	notModified := func(tag string) map[string]string {
		return map[string]string{"Cache-Control": "public, max-age=300", "Etag": tag}
	}
	methodNotAllowed := map[string]string{"Allow": "GET, HEAD", "Content-Type": "text/plain; charset=utf-8"}
	notFound := map[string]string{"Content-Type": "text/plain; charset=utf-8"}
	const prefix = "/cluster-1"

	tests := map[string]struct {
		method  string
		path    string
		headers map[string]string
		want    response
	}{
		"GET configuration":              {method: "GET", path: prefix + ConfigPath, want: response{200, configHeaders, config}},
		"GET JWKS":                       {method: "GET", path: prefix + JWKSPath, want: response{200, jwksHeaders, jwks}},
		"GET keys.json":                  {method: "GET", path: prefix + LegacyJWKSPath, want: response{200, jwksHeaders, jwks}},
		"HEAD configuration":             {method: "HEAD", path: prefix + ConfigPath, want: response{200, configHeaders, ""}},
		"HEAD JWKS":                      {method: "HEAD", path: prefix + JWKSPath, want: response{200, jwksHeaders, ""}},
		"If-None-Match, same tag":        {method: "GET", path: prefix + JWKSPath, headers: map[string]string{"If-None-Match": docs.JWKSETag}, want: response{304, notModified(docs.JWKSETag), ""}},
		"If-None-Match, weak same tag":   {method: "GET", path: prefix + ConfigPath, headers: map[string]string{"If-None-Match": "W/" + docs.ConfigETag}, want: response{304, notModified(docs.ConfigETag), ""}},
		"If-None-Match, list with ours":  {method: "HEAD", path: prefix + JWKSPath, headers: map[string]string{"If-None-Match": `"old", ` + docs.JWKSETag}, want: response{304, notModified(docs.JWKSETag), ""}},
		"If-None-Match, star":            {method: "GET", path: prefix + ConfigPath, headers: map[string]string{"If-None-Match": "*"}, want: response{304, notModified(docs.ConfigETag), ""}},
		"If-None-Match, other tag":       {method: "GET", path: prefix + JWKSPath, headers: map[string]string{"If-None-Match": `"old"`}, want: response{200, jwksHeaders, jwks}},
		"If-None-Match, the other doc's": {method: "GET", path: prefix + JWKSPath, headers: map[string]string{"If-None-Match": docs.ConfigETag}, want: response{200, jwksHeaders, jwks}},
		"POST configuration":             {method: "POST", path: prefix + ConfigPath, want: response{405, methodNotAllowed, "method not allowed: use GET or HEAD\n"}},
		"PUT JWKS":                       {method: "PUT", path: prefix + JWKSPath, want: response{405, methodNotAllowed, "method not allowed: use GET or HEAD\n"}},
		"DELETE keys.json":               {method: "DELETE", path: prefix + LegacyJWKSPath, want: response{405, methodNotAllowed, "method not allowed: use GET or HEAD\n"}},
		"OPTIONS JWKS":                   {method: "OPTIONS", path: prefix + JWKSPath, want: response{405, methodNotAllowed, "method not allowed: use GET or HEAD\n"}},
		"root":                           {method: "GET", path: "/", want: response{404, notFound, "404 page not found\n"}},
		"configuration outside issuer":   {method: "GET", path: ConfigPath, want: response{404, notFound, "404 page not found\n"}},
		"JWKS with trailing slash":       {method: "GET", path: prefix + JWKSPath + "/", want: response{404, notFound, "404 page not found\n"}},
		"issuer path only":               {method: "GET", path: prefix, want: response{404, notFound, "404 page not found\n"}},
		"POST elsewhere":                 {method: "POST", path: "/metrics", want: response{404, notFound, "404 page not found\n"}},
		"other issuer prefix":            {method: "GET", path: "/cluster-10" + JWKSPath, want: response{404, notFound, "404 page not found\n"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := response{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(body)}
			for k := range tc.want.Headers {
				got.Headers[k] = resp.Header.Get(k)
			}
			for _, absent := range []string{"Etag", "Cache-Control", "Allow"} {
				if _, want := tc.want.Headers[absent]; !want && resp.Header.Get(absent) != "" {
					got.Headers[absent] = resp.Header.Get(absent)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tc.method, tc.path, diff)
			}
		})
	}

	for _, c := range []struct {
		path, code string
		want       float64
	}{
		{JWKSPath, "200", 4}, {JWKSPath, "304", 2}, {ConfigPath, "304", 2}, {LegacyJWKSPath, "405", 1}, {"other", "404", 6},
	} {
		if got := testutil.ToFloat64(metrics.requests.WithLabelValues(c.path, c.code)); got != c.want {
			t.Errorf("requests{path=%q,code=%q} = %v, want %v", c.path, c.code, got, c.want)
		}
	}
}

func TestHandlerBeforeKeysLoaded(t *testing.T) {
	pub := NewPublisher(testIssuer, testIssuer+JWKSPath, PublisherOptions{})
	h := NewHandler(pub, nil)
	for _, path := range []string{"/cluster-1" + ConfigPath, "/cluster-1" + JWKSPath, "/cluster-1" + LegacyJWKSPath} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		got := []string{itoa(rec.Code), rec.Header().Get("Retry-After"), rec.Header().Get("Cache-Control"), rec.Body.String()}
		want := []string{"503", "5", "no-store", "no signing keys loaded yet\n"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s before keys (-want +got):\n%s", path, diff)
		}
		if strings.Contains(rec.Body.String(), `"keys"`) {
			t.Errorf("GET %s served a key set before one was loaded", path)
		}
	}
}

func TestHandlerIssuerWithoutPath(t *testing.T) {
	pub := NewPublisher("https://oidc.example.com", "https://oidc.example.com"+JWKSPath, PublisherOptions{})
	if _, err := pub.Publish(jwksFromFiles(t, "rsa.pub")); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(pub, nil)
	for path, want := range map[string]int{ConfigPath: 200, JWKSPath: 200, LegacyJWKSPath: 200, "/cluster-1" + JWKSPath: 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
