package discovery

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Response header values. The content types are the ones kube-apiserver
// sends for the same documents; the JWKS type is the one RFC 7517 registers.
const (
	contentTypeConfig = "application/json"
	contentTypeJWKS   = "application/jwk-set+json"
	// cacheControl lets clients cache a document for five minutes: short,
	// so a key added for rotation is seen soon (kube-apiserver says an hour).
	cacheControl = "public, max-age=300"
	allowMethods = "GET, HEAD"
	// retryAfter is what a client is told to wait while no key set is loaded.
	retryAfter = "5"
	otherPath  = "other"
)

// Handler serves the discovery documents of a Publisher at the issuer's
// path: <issuer path>/.well-known/openid-configuration, <issuer
// path>/openid/v1/jwks and <issuer path>/keys.json. It answers GET and HEAD,
// with a strong ETag and 304 for a matching If-None-Match; 405 for other
// methods on those paths; 404 anywhere else; 503 until a key set is loaded.
type Handler struct {
	pub     *Publisher
	metrics *Metrics
	prefix  string
}

// NewHandler serves pub's documents, recording requests in m (may be nil).
func NewHandler(pub *Publisher, m *Metrics) *Handler {
	prefix := ""
	if u, err := url.Parse(pub.Issuer()); err == nil {
		prefix = strings.TrimSuffix(u.EscapedPath(), "/")
	}
	return &Handler{pub: pub, metrics: m, prefix: prefix}
}

type document int

const (
	docConfig document = iota + 1
	docJWKS
)

func (h *Handler) route(path string) (document, string) {
	rel, ok := strings.CutPrefix(path, h.prefix)
	if !ok {
		return 0, otherPath
	}
	switch rel {
	case ConfigPath:
		return docConfig, ConfigPath
	case JWKSPath:
		return docJWKS, JWKSPath
	case LegacyJWKSPath:
		return docJWKS, LegacyJWKSPath
	}
	return 0, otherPath
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	doc, label := h.route(r.URL.EscapedPath())
	code := h.serve(w, r, doc)
	h.metrics.request(label, code)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, doc document) int {
	hdr := w.Header()
	if doc == 0 {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", allowMethods)
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	docs := h.pub.Documents()
	if docs == nil {
		hdr.Set("Retry-After", retryAfter)
		hdr.Set("Cache-Control", "no-store")
		http.Error(w, "no signing keys loaded yet", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	body, tag, ctype := docs.Config, docs.ConfigETag, contentTypeConfig
	if doc == docJWKS {
		body, tag, ctype = docs.JWKS, docs.JWKSETag, contentTypeJWKS
	}
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("ETag", tag)
	if etagMatches(r.Header.Values("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body) // a client that went away is not our error
	}
	return http.StatusOK
}

// etagMatches applies If-None-Match with the weak comparison RFC 9110
// prescribes for it: "*" or any listed tag equal to ours, W/ ignored.
func etagMatches(headers []string, tag string) bool {
	for _, h := range headers {
		for _, candidate := range strings.Split(h, ",") {
			candidate = strings.TrimSpace(candidate)
			if candidate == "*" || strings.TrimPrefix(candidate, "W/") == tag {
				return true
			}
		}
	}
	return false
}
