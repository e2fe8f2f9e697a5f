// Command s3get reads one S3 object with the AWS SDK for Go v2 configured by
// config.LoadDefaultConfig and nothing else, the way an application in a Pod
// would: credentials come from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE
// through AssumeRoleWithWebIdentity, endpoints from AWS_ENDPOINT_URL_*.
//
// It prints the object to stdout and, on stderr, where the credentials came
// from and when they expire (never the credentials themselves).
//
//	s3get BUCKET KEY
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "s3get:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: s3get BUCKET KEY")
	}
	bucket, key := args[0], args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("get credentials: %w", err)
	}
	fmt.Fprintf(os.Stderr, "credentials: source=%s region=%s expires=%s\n", creds.Source, cfg.Region, creds.Expires.UTC().Format(time.RFC3339))

	out, err := s3.NewFromConfig(cfg).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	_, err = os.Stdout.Write(body)
	return err
}
