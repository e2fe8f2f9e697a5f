package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/pkg/awsiam"
	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
)

// thumbprintOptions is everything `irsa-webhook thumbprint` is told by
// flags and its one argument.
type thumbprintOptions struct {
	// target is the issuer (or jwks_uri) URL, or a bare host[:port].
	target  string
	caFile  string
	timeout time.Duration
	output  string
	// discovery follows AWS's procedure for an https target
	// (awsiam.IssuerThumbprints); off, the target's host alone.
	discovery bool
}

func newThumbprintOptions() *thumbprintOptions {
	return &thumbprintOptions{timeout: 10 * time.Second, output: outputText, discovery: true}
}

func (o *thumbprintOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.caFile, "ca-file", o.caFile, "PEM file of the CA certificates that sign the server's chain, for a private CA. Default: the system's trusted roots.")
	fs.BoolVar(&o.discovery, "discovery", o.discovery, "Treat an https URL as the issuer, as AWS's procedure does: read its /.well-known/openid-configuration and also print the thumbprint of the jwks_uri host when it is another host (AWS wants both). --discovery=false thumbprints the URL's host alone. A bare host[:port] is always thumbprinted alone.")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "Bound on connecting and the TLS handshake.")
	addOutputFlag(fs, &o.output, "Output format: text (the thumbprint alone) or json (with the certificate it was taken from and the whole chain).")
}

// validate reports every bad flag and argument at once.
func (o *thumbprintOptions) validate() error {
	var errs []error
	if _, _, err := awsiam.ThumbprintAddress(o.target); err != nil {
		errs = append(errs, fmt.Errorf("URL argument: %w", err))
	}
	if o.caFile != "" {
		if _, err := certpool.ReadFile(o.caFile); err != nil {
			errs = append(errs, fmt.Errorf("--ca-file: %w", err))
		}
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: %s must be positive", o.timeout))
	}
	errs = append(errs, validateOutput(o.output, outputText, outputJSON))
	return errors.Join(errs...)
}

// runThumbprint takes the thumbprints o asks for, bounded by o.timeout,
// and writes them to out. o must have passed validate.
func runThumbprint(ctx context.Context, o *thumbprintOptions, out io.Writer) error {
	var roots *x509.CertPool
	if o.caFile != "" {
		var err error
		if roots, err = certpool.LoadFile(o.caFile); err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	thumbprint := awsiam.Thumbprint
	if o.discovery {
		thumbprint = awsiam.IssuerThumbprints
	}
	res, err := thumbprint(ctx, o.target, roots)
	if err != nil {
		return err
	}
	if o.output == outputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("render thumbprint: %w", err)
		}
		return nil
	}
	// The thumbprints alone, one a line, for scripts.
	_, err = fmt.Fprintln(out, strings.Join(res.Thumbprints(), "\n"))
	return err
}

func newThumbprintCommand() *cobra.Command {
	opts := newThumbprintOptions()
	cmd := &cobra.Command{
		Use:   "thumbprint URL",
		Short: "Print the certificate thumbprint IAM asks for when creating the OIDC provider",
		Long: `Print the SHA-1 thumbprint IAM's CreateOpenIDConnectProvider takes, following
AWS's documented procedure: read the issuer URL's discovery document
(/.well-known/openid-configuration), connect over TLS to its jwks_uri host,
and print 40 lower case hex digits of the last certificate that host
presents, the top intermediate CA of its chain. When the jwks_uri is on
another host than the issuer, AWS checks both, so both thumbprints are
printed, one a line, the issuer's first. A server that presents only its own
certificate gets the thumbprint of the CA that verified it, not of a leaf
that changes at every renewal (-o json shows which certificate was used).

--discovery=false, or a bare host[:port] as URL, thumbprints that host alone.
Chains must verify against the system's trusted roots, or against --ca-file
for a private CA; a redirect from https to plain HTTP is an error.`,
		Example: `  irsa-webhook thumbprint https://oidc.example.com/cluster-1

  # A discovery server behind a private CA:
  irsa-webhook thumbprint https://oidc.internal.example:8443 --ca-file ca.pem -o json

  # Straight into the provider (both thumbprints when the jwks_uri host differs):
  aws iam create-open-id-connect-provider --url https://oidc.example.com/cluster-1 \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list $(irsa-webhook thumbprint https://oidc.example.com/cluster-1)

  # One host's chain only, no discovery document:
  irsa-webhook thumbprint keys.example.com:443`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.target = args[0]
			if err := opts.validate(); err != nil {
				return err
			}
			return runThumbprint(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd.Flags())
	return cmd
}
