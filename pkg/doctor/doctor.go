package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/pkg/awsiam"
	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// ErrChecksFailed is returned by Run when at least one check failed.
var ErrChecksFailed = errors.New("doctor: checks failed")

// run is the state one Run carries from link to link.
type run struct {
	cfg    *Config
	kube   kubernetes.Interface
	http   *http.Client
	out    io.Writer
	report *Report

	sa   *corev1.ServiceAccount
	plan *identity.Plan
	tok  *token
	disc *discovered

	// The API server's issuer, looked up at most once.
	issuerLooked bool
	apiIssuer    string
	apiIssuerErr error
}

// Run checks every link of the chain for cfg's ServiceAccount, writes the
// checklist to out (as it goes for text, at the end for JSON) and returns
// the report. The error is ErrChecksFailed when a check failed, or another
// error when the report could not be written; cfg must have been validated.
func Run(ctx context.Context, cfg *Config, kube kubernetes.Interface, out io.Writer) (*Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	httpClient, err := discoveryClient(cfg)
	if err != nil {
		return nil, err
	}
	r := &run{
		cfg: cfg, kube: kube, http: httpClient, out: out,
		report: &Report{Namespace: cfg.Namespace, ServiceAccount: cfg.ServiceAccount, Checks: []Check{}},
	}

	r.checkServiceAccount(ctx)
	r.checkWebhook(ctx)
	r.checkToken(ctx)
	r.checkDiscovery(ctx)
	r.checkBucket(ctx)

	if cfg.Output == OutputJSON {
		if err := writeJSON(out, r.report); err != nil {
			return r.report, err
		}
	} else {
		writeSummary(out, r.report)
	}
	if r.report.Failed > 0 {
		return r.report, ErrChecksFailed
	}
	return r.report, nil
}

// add records a check and, for text output, prints it at once.
func (r *run) add(id string, s Status, fix, format string, args ...any) {
	c := Check{ID: id, Status: s, Message: fmt.Sprintf(format, args...), Fix: fix}
	switch s {
	case StatusFail:
		r.report.Failed++
	case StatusWarn:
		r.report.Warnings++
	}
	r.report.Checks = append(r.report.Checks, c)
	if r.cfg.Output != OutputJSON {
		writeCheck(r.out, c)
	}
}

func (r *run) skip(id, because string) {
	r.add(id, StatusSkip, "", "not checked: %s", because)
}

// discoveryClient is the HTTP client for the discovery URLs: system roots
// plus --ca-file.
func discoveryClient(cfg *Config) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		b, err := certpool.ReadFile(cfg.CAFile)
		if err == nil {
			err = certpool.Append(pool, b)
		}
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
	}
	return &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
		// What AWS fetches is what doctor checks: https all the way.
		CheckRedirect: awsiam.HTTPSOnlyRedirects,
	}, nil
}

func (r *run) saRef() string { return r.cfg.Namespace + "/" + r.cfg.ServiceAccount }

// checkServiceAccount: the ServiceAccount exists and its role annotation
// parses; the token audience and lifetime are decided as the webhook would.
func (r *run) checkServiceAccount(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	sa, err := r.kube.CoreV1().ServiceAccounts(r.cfg.Namespace).Get(ctx, r.cfg.ServiceAccount, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.add(CheckServiceAccount, StatusFail,
			fmt.Sprintf("create it (kubectl create serviceaccount -n %s %s), or check --namespace and --service-account", r.cfg.Namespace, r.cfg.ServiceAccount),
			"service account %s does not exist", r.saRef())
		r.skip(CheckRoleARN, "no service account")
		r.skipPlan("no service account")
		return
	case err != nil:
		r.add(CheckServiceAccount, StatusFail, "check the kubeconfig; doctor needs get on serviceaccounts",
			"get service account %s: %v", r.saRef(), err)
		r.skip(CheckRoleARN, "no service account")
		r.skipPlan("no service account")
		return
	}
	r.sa = sa
	r.add(CheckServiceAccount, StatusPass, "", "service account %s exists", r.saRef())

	keys := identity.Keys{Prefix: r.cfg.AnnotationPrefix}
	roleKey := keys.Key(identity.RoleARN)
	arn, ok := sa.Annotations[roleKey]
	if !ok {
		r.add(CheckRoleARN, StatusFail,
			fmt.Sprintf("kubectl annotate serviceaccount -n %s %s %s=arn:aws:iam::<account>:role/<name>", r.cfg.Namespace, r.cfg.ServiceAccount, roleKey),
			"service account %s has no %s annotation, so its pods get no AWS credentials", r.saRef(), roleKey)
		r.skipPlan("no role")
		return
	}
	if err := identity.ValidateRoleARN(arn); err != nil {
		r.add(CheckRoleARN, StatusFail,
			fmt.Sprintf("kubectl annotate --overwrite serviceaccount -n %s %s %s=arn:aws:iam::<account>:role/<name>", r.cfg.Namespace, r.cfg.ServiceAccount, roleKey),
			"annotation %s %v", roleKey, err)
		r.skipPlan("no valid role")
		return
	}
	r.add(CheckRoleARN, StatusPass, "", "annotation %s is role %s", roleKey, arn)
	r.checkPlan(ctx, sa)
}

// audience is the audience the webhook would put in the pod's token.
func (r *run) audience() string {
	if r.plan != nil {
		return r.plan.Audience
	}
	return r.cfg.TokenAudience
}

// expiration is the lifetime the webhook would ask for.
func (r *run) expiration() int64 {
	if r.plan != nil {
		return r.plan.ExpirationSeconds
	}
	return r.cfg.TokenExpiration
}

// oneLine keeps an error on one checklist line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
