// Command s3get reads one S3 object with the AWS SDK for Go v2 configured by
// config.LoadDefaultConfig and nothing else, the way an application in a Pod
// would: credentials come from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE
// through AssumeRoleWithWebIdentity, endpoints from AWS_ENDPOINT_URL_*.
//
// It prints the object to stdout and, on stderr, where the credentials came
// from and when they expire (never the credentials themselves).
//
// With -every, it runs as a Pod's container would: it reads the object,
// each time with a freshly loaded config (so a new AssumeRoleWithWebIdentity
// with the token file as it is then), every interval until stopped, and
// prints one line per read to stdout ("read N: OBJECT") or stderr
// ("read N failed: ERROR"), so that the container's log tells each read.
//
// With -put CONTENT, it writes CONTENT to the object instead, once. With
// -profile NAME, it picks that profile of the shared config in code
// (config.WithSharedConfigProfile), as an application choosing a role per
// call does.
//
//	s3get [-profile NAME] [-every DURATION | -put CONTENT] BUCKET KEY
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
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
	fs := flag.NewFlagSet("s3get", flag.ContinueOnError)
	every := fs.Duration("every", 0, "read again at this interval until stopped (0: read once)")
	put := fs.String("put", "", "write this content to the object instead of reading it")
	fs.StringVar(&profile, "profile", "", "use this profile of the shared config, chosen in code")
	if err := fs.Parse(args); err != nil {
		return err
	}
	putting := false
	fs.Visit(func(f *flag.Flag) { putting = putting || f.Name == "put" })
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: s3get BUCKET KEY, or s3get -every DURATION BUCKET KEY")
	}
	bucket, key := fs.Arg(0), fs.Arg(1)
	if *every < 0 {
		return fmt.Errorf("-every %s: want a positive interval", *every)
	}
	if putting {
		if *every != 0 {
			return fmt.Errorf("-put writes once; it does not go with -every")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return putObject(ctx, bucket, key, *put)
	}
	if *every == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		body, err := get(ctx, bucket, key)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(body)
		return err
	}
	return loop(*every, bucket, key)
}

// loop reads every interval until SIGTERM or SIGINT.
func loop(every time.Duration, bucket, key string) error {
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	for n := 1; ; n++ {
		ctx, cancelRead := context.WithTimeout(stop, 60*time.Second)
		body, err := get(ctx, bucket, key)
		cancelRead()
		if err != nil {
			fmt.Fprintf(os.Stderr, "read %d failed: %v\n", n, err)
		} else {
			fmt.Printf("read %d: %s\n", n, strings.TrimSpace(string(body)))
		}
		select {
		case <-stop.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// profile, when set, is the shared config profile chosen in code.
var profile string

// client loads the default config, gets credentials and returns an S3
// client with them.
func client(ctx context.Context) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("get credentials: %w", err)
	}
	fmt.Fprintf(os.Stderr, "credentials: source=%s region=%s expires=%s\n", creds.Source, cfg.Region, creds.Expires.UTC().Format(time.RFC3339))

	// Only logging is tuned: MinIO sends no response checksum, and the SDK
	// would log that on every read.
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }), nil
}

// putObject writes content to bucket/key.
func putObject(ctx context.Context, bucket, key, content string) error {
	client, err := client(ctx)
	if err != nil {
		return err
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(content)}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// get reads the object with a freshly loaded config.
func get(ctx context.Context, bucket, key string) ([]byte, error) {
	client, err := client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return body, nil
}
