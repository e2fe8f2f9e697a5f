package discovery

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Bucket is a Bucket in Amazon S3 (or a store that speaks its API),
// written with the AWS SDK. It needs s3:PutObject on the documents' keys
// and nothing else.
type S3Bucket struct {
	Client *s3.Client
	Name   string
}

var _ Bucket = S3Bucket{}

// S3Options say how to reach a bucket: what `discovery publish` and
// `doctor --bucket` are told by --region, --endpoint-url and --path-style.
type S3Options struct {
	// Region of the bucket; empty means the SDK's (AWS_REGION, the shared
	// config).
	Region string
	// EndpointURL overrides the S3 endpoint; empty means the SDK's.
	EndpointURL string
	// PathStyle addresses the bucket in the URL path.
	PathStyle bool
}

// NewS3Client is an S3 client for o, with the SDK's default credential
// chain (environment, shared files, the node's role).
func NewS3Client(ctx context.Context, o S3Options) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if o.EndpointURL != "" {
			so.BaseEndpoint = aws.String(o.EndpointURL)
		}
		so.UsePathStyle = o.PathStyle
	}), nil
}

// Put writes body at key with its content type and cache header, as the
// Handler serves them; the SDK checks the upload's integrity.
func (b S3Bucket) Put(ctx context.Context, key string, body []byte, contentType, cacheControl string) error {
	_, err := b.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.Name),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
		CacheControl:  aws.String(cacheControl),
	})
	return err
}

// Get reads the object at key (s3:GetObject), refusing one larger than
// limit bytes, and returns its body and content type.
func (b S3Bucket) Get(ctx context.Context, key string, limit int64) (body []byte, contentType string, err error) {
	out, err := b.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = out.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("read s3://%s/%s: %w", b.Name, key, err)
	}
	if int64(len(body)) > limit {
		return nil, "", fmt.Errorf("s3://%s/%s is larger than %d bytes", b.Name, key, limit)
	}
	return body, aws.ToString(out.ContentType), nil
}
