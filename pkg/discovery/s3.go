package discovery

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
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
