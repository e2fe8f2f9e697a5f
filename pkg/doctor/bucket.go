package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/smithy-go"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

// checkBucket reads back what `discovery publish` wrote to --bucket, with
// the SDK's credentials rather than anonymously (the discovery checks
// already fetch the issuer the way AWS does), and checks it against the
// issuer and the keys the API server signs with: a key rotated without
// publishing shows here as a missing kid.
func (r *run) checkBucket(ctx context.Context) {
	if r.cfg.Bucket == "" {
		return
	}
	issuer := r.publicIssuer(ctx)
	if issuer == "" {
		r.skipBucket(CheckBucketDocument, "no issuer known; pass --issuer")
		return
	}
	client, err := discovery.NewS3Client(ctx, r.cfg.S3)
	if err != nil {
		r.add(CheckBucketDocument, StatusFail, "configure the AWS SDK as for discovery publish (AWS_REGION or --region, credentials)", "%s", oneLine(err))
		r.skipBucket(CheckBucketJWKS, "no S3 client")
		return
	}
	bucket := discovery.S3Bucket{Client: client, Name: r.cfg.Bucket}

	publish := fmt.Sprintf("irsa-webhook discovery publish --issuer %s --bucket %s", issuer, r.cfg.Bucket)
	if r.cfg.BucketPrefix != "" {
		publish += " --prefix " + r.cfg.BucketPrefix
	}
	if !r.spiffe() {
		publish += " --from-apiserver"
	}

	docKey := discovery.Key(r.cfg.BucketPrefix, discovery.ConfigPath)
	body, err := r.getObject(ctx, bucket, docKey)
	if err != nil {
		r.add(CheckBucketDocument, StatusFail, r.bucketFix(err, publish), "%s: %s", r.objectURL(docKey), bucketError(err))
		r.skipBucket(CheckBucketJWKS, "no discovery document in the bucket")
		return
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		r.add(CheckBucketDocument, StatusFail, "publish it again: "+publish, "%s is not a JSON discovery document: %v", r.objectURL(docKey), err)
		r.skipBucket(CheckBucketJWKS, "no usable discovery document in the bucket")
		return
	}
	if doc.Issuer != issuer {
		r.add(CheckBucketDocument, StatusFail,
			fmt.Sprintf("publish the issuer's documents (%s), or check --bucket-prefix: it must be discovery publish's --prefix", publish),
			"%s says issuer %q, not %q: AWS rejects a mismatch", r.objectURL(docKey), doc.Issuer, issuer)
		r.skipBucket(CheckBucketJWKS, "the bucket's document is for another issuer")
		return
	}
	jwksPath, ok := pathUnder(doc.JWKSURI, issuer)
	if !ok {
		r.add(CheckBucketDocument, StatusFail, "publish it again without --jwks-uri, or with one under the issuer: "+publish,
			"%s has jwks_uri %q, which is not under the issuer %s: the bucket does not serve it", r.objectURL(docKey), doc.JWKSURI, issuer)
		r.skipBucket(CheckBucketJWKS, "jwks_uri not in the bucket")
		return
	}
	served, unserved := r.servedDocuments(ctx, issuer, doc.JWKSURI)
	switch {
	case served == nil:
		r.add(CheckBucketDocument, StatusPass, "", "%s is for issuer %q, jwks_uri %s (not compared byte for byte: %s)", r.objectURL(docKey), issuer, doc.JWKSURI, unserved)
	case !bytes.Equal(body, served.Config):
		r.add(CheckBucketDocument, StatusWarn, "publish it with discovery publish, which writes what discovery serve serves: "+publish,
			"%s has the right issuer and jwks_uri but differs from what discovery serve would serve for %s", r.objectURL(docKey), issuer)
	default:
		r.add(CheckBucketDocument, StatusPass, "", "%s is for issuer %q, byte for byte what discovery serve would serve", r.objectURL(docKey), issuer)
	}

	r.checkBucketJWKS(ctx, bucket, discovery.Key(r.cfg.BucketPrefix, jwksPath), served, publish)
}

// checkBucketJWKS reads the bucket's JWKS and verifies the token with its
// key of the token's kid.
func (r *run) checkBucketJWKS(ctx context.Context, bucket discovery.S3Bucket, key string, served *discovery.Documents, publish string) {
	body, err := r.getObject(ctx, bucket, key)
	if err != nil {
		r.add(CheckBucketJWKS, StatusFail, r.bucketFix(err, publish), "%s (the document's jwks_uri): %s", r.objectURL(key), bucketError(err))
		r.skip(CheckBucketSignature, "no JWKS in the bucket")
		return
	}
	keys, err := discovery.ParseJWKS(body)
	if err != nil {
		// ParseJWKS names a bad key by its kid, never by its material.
		r.add(CheckBucketJWKS, StatusFail, "publish it again (and rotate any key whose private half was ever uploaded): "+publish,
			"%s: %v", r.objectURL(key), err)
		r.skip(CheckBucketSignature, "no usable JWKS in the bucket")
		return
	}
	set := jose.JSONWebKeySet{Keys: keys}
	kids := keyIDs(keys)
	if r.tok == nil {
		r.add(CheckBucketJWKS, StatusPass, "", "%s holds %d key(s): %s", r.objectURL(key), len(keys), strings.Join(kids, ", "))
		r.skip(CheckBucketSignature, "no token")
		return
	}
	if len(set.Key(r.tok.kid)) == 0 {
		r.add(CheckBucketJWKS, StatusFail,
			"the signing key changed and the bucket was not published since: "+publish+" (run it as a Deployment to follow every rotation, or as a Job after each)",
			"%s has no key with the token's kid %q (it has: %s): AWS rejects the tokens", r.objectURL(key), r.tok.kid, strings.Join(kids, ", "))
		r.skip(CheckBucketSignature, "the token's key is not in the bucket")
		return
	}
	switch missing := missingKeys(served, kids); {
	case served != nil && len(missing) > 0:
		r.add(CheckBucketJWKS, StatusWarn, "publish the API server's current keys: "+publish,
			"%s holds the token's kid %q but not the API server's key(s) %s: tokens they sign will be rejected", r.objectURL(key), r.tok.kid, strings.Join(missing, ", "))
	case served != nil && !bytes.Equal(body, served.JWKS):
		r.add(CheckBucketJWKS, StatusWarn, "publish it with discovery publish: "+publish,
			"%s holds the token's kid %q but differs from what discovery serve would serve (it has: %s)", r.objectURL(key), r.tok.kid, strings.Join(kids, ", "))
	case served != nil:
		r.add(CheckBucketJWKS, StatusPass, "", "%s holds the token's kid %q, byte for byte the API server's keys as discovery serve would serve them", r.objectURL(key), r.tok.kid)
	default:
		r.add(CheckBucketJWKS, StatusPass, "", "%s holds the token's kid %q", r.objectURL(key), r.tok.kid)
	}

	switch err := r.verifyToken(set.Key(r.tok.kid)); {
	case errors.Is(err, errAlgorithm):
		r.add(CheckBucketSignature, StatusFail, "sign service account tokens with an RSA or ECDSA (P-256/P-384/P-521) key", "%v", err)
	case err != nil:
		r.add(CheckBucketSignature, StatusFail, "the bucket holds a different key under the token's kid: "+publish,
			"token signature does not verify with the bucket's key %q: %v", r.tok.kid, err)
	default:
		r.add(CheckBucketSignature, StatusPass, "", "token signature (%s) verifies with the bucket's key %q", r.tok.alg, r.tok.kid)
	}
}

func (r *run) skipBucket(from, because string) {
	ids := []string{CheckBucketDocument, CheckBucketJWKS, CheckBucketSignature}
	for _, id := range ids[slices.Index(ids, from):] {
		r.skip(id, because)
	}
}

func (r *run) getObject(ctx context.Context, bucket discovery.S3Bucket, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	body, _, err := bucket.Get(ctx, key, maxDocumentSize)
	return body, err
}

func (r *run) objectURL(key string) string { return "s3://" + r.cfg.Bucket + "/" + key }

// servedDocuments renders what `discovery serve --from-apiserver` would
// serve for issuer: the API server's keys. Nil, with the reason, when
// they cannot be known from here.
func (r *run) servedDocuments(ctx context.Context, issuer, jwksURI string) (*discovery.Documents, string) {
	if r.spiffe() {
		return nil, "token-source spiffe publishes the SPIRE bundle's keys"
	}
	keys, err := r.apiServerKeys(ctx)
	if err != nil {
		return nil, oneLine(err)
	}
	docs, err := discovery.Render(issuer, jwksURI, keys)
	if err != nil {
		return nil, "the API server's keys: " + oneLine(err)
	}
	return docs, ""
}

// apiServerKeys reads the API server's own JWKS, the keys its tokens are
// signed with.
func (r *run) apiServerKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	rc := r.kube.Discovery().RESTClient()
	if rc == nil {
		return nil, errors.New("this client cannot read the API server's JWKS")
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	b, err := rc.Get().AbsPath(discovery.JWKSPath).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's %s: %w", discovery.JWKSPath, err)
	}
	return discovery.ParseJWKS(b)
}

// bucketFix says what to do about a failed read of the bucket.
func (r *run) bucketFix(err error, publish string) string {
	switch bucketErrorCode(err) {
	case "NoSuchKey", "NotFound":
		return "publish the documents: " + publish + "; if they are published, check --bucket-prefix: it must be discovery publish's --prefix"
	case "NoSuchBucket":
		return "check --bucket, --region and --endpoint-url: they must be discovery publish's"
	case "AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken":
		resource := "arn:aws:s3:::" + r.cfg.Bucket + "/" + strings.TrimPrefix(discovery.Key(r.cfg.BucketPrefix, "/*"), "/")
		return "doctor reads with the AWS SDK's default credentials: allow them s3:GetObject on " + resource + " (their IAM policy or the bucket policy)"
	}
	return "check --region, --endpoint-url and the AWS SDK's credentials (as for discovery publish)"
}

// bucketError is a short reason for a failed read.
func bucketError(err error) string {
	switch code := bucketErrorCode(err); code {
	case "NoSuchKey", "NotFound":
		return "no such object"
	case "":
		return oneLine(err)
	default:
		var ae smithy.APIError
		errors.As(err, &ae)
		return code + ": " + ae.ErrorMessage()
	}
}

func bucketErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// pathUnder returns u's path below issuer, if u is an URL under it.
func pathUnder(u, issuer string) (string, bool) {
	base := strings.TrimSuffix(issuer, "/") + "/"
	if !strings.HasPrefix(u, base) || strings.ContainsAny(u, "?#") {
		return "", false
	}
	return "/" + strings.TrimPrefix(u, base), true
}

func keyIDs(keys []jose.JSONWebKey) []string {
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.KeyID
	}
	return kids
}

// missingKeys are the kids served has and kids lacks.
func missingKeys(served *discovery.Documents, kids []string) []string {
	if served == nil {
		return nil
	}
	var missing []string
	for _, kid := range served.KeyIDs {
		if !slices.Contains(kids, kid) {
			missing = append(missing, kid)
		}
	}
	return missing
}
