package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
)

// webhookName is what identifies irsa-webhook's registration.
const webhookName = "irsa-webhook"

// mutatePath is where `irsa-webhook serve` answers AdmissionReviews.
const mutatePath = "/mutate"

// foundWebhook is one webhook of a configuration, with how it was matched.
type foundWebhook struct {
	config  string
	webhook admissionregistrationv1.MutatingWebhook
	byPath  bool
}

// findWebhooks picks irsa-webhook's webhooks among the cluster's
// MutatingWebhookConfigurations:
//
//  1. --webhook-configuration given: every webhook of that configuration.
//  2. Else every webhook whose configuration's name or own name contains
//     "irsa-webhook" (the install manifests name both so).
//  3. Else, as a fallback for hand-made registrations, webhooks whose
//     clientConfig path is exactly /mutate and whose rules cover pod
//     CREATE; doctor warns that it matched by path alone, because other
//     products use /mutate too.
func findWebhooks(list []admissionregistrationv1.MutatingWebhookConfiguration, name string) []foundWebhook {
	var byName, byPath []foundWebhook
	for _, cfg := range list {
		for _, wh := range cfg.Webhooks {
			switch {
			case name != "":
				if cfg.Name == name {
					byName = append(byName, foundWebhook{config: cfg.Name, webhook: wh})
				}
			case strings.Contains(cfg.Name, webhookName) || strings.Contains(wh.Name, webhookName):
				byName = append(byName, foundWebhook{config: cfg.Name, webhook: wh})
			case clientPath(wh.ClientConfig) == mutatePath && coversPodCreate(wh):
				byPath = append(byPath, foundWebhook{config: cfg.Name, webhook: wh, byPath: true})
			}
		}
	}
	if len(byName) > 0 || name != "" {
		return byName
	}
	return byPath
}

// clientPath is the HTTP path the API server calls.
func clientPath(cc admissionregistrationv1.WebhookClientConfig) string {
	if cc.Service != nil {
		if cc.Service.Path != nil {
			return *cc.Service.Path
		}
		return "/"
	}
	if cc.URL != nil {
		if u, err := url.Parse(*cc.URL); err == nil {
			return u.Path
		}
	}
	return ""
}

// coversPodCreate reports whether the webhook is called for pod CREATE.
func coversPodCreate(wh admissionregistrationv1.MutatingWebhook) bool {
	for _, rule := range wh.Rules {
		op := false
		for _, o := range rule.Operations {
			op = op || o == admissionregistrationv1.Create || o == admissionregistrationv1.OperationAll
		}
		res := false
		for _, r := range rule.Resources {
			res = res || r == "pods" || r == "*"
		}
		group := false
		for _, g := range rule.APIGroups {
			group = group || g == "" || g == "*"
		}
		if op && res && group {
			return true
		}
	}
	return false
}

// checkWebhook: a MutatingWebhookConfiguration for irsa-webhook exists, and
// the caBundle of each of its webhooks verifies the serving certificate.
func (r *run) checkWebhook(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	list, err := r.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(lctx, metav1.ListOptions{})
	if err != nil {
		fix := "check the kubeconfig; doctor needs list on mutatingwebhookconfigurations"
		if apierrors.IsForbidden(err) {
			fix = "grant list on mutatingwebhookconfigurations.admissionregistration.k8s.io to the user doctor runs as"
		}
		r.add(CheckWebhookConfiguration, StatusFail, fix, "list mutating webhook configurations: %v", err)
		r.skip(CheckWebhookCABundle, "no webhook configuration")
		return
	}
	found := findWebhooks(list.Items, r.cfg.WebhookConfiguration)
	if len(found) == 0 {
		what := "no MutatingWebhookConfiguration whose name or webhook name contains irsa-webhook (nor one calling path /mutate for pods)"
		if r.cfg.WebhookConfiguration != "" {
			what = fmt.Sprintf("MutatingWebhookConfiguration %q does not exist or has no webhooks", r.cfg.WebhookConfiguration)
		}
		r.add(CheckWebhookConfiguration, StatusFail,
			"install the webhook (see the README's install section), or name its configuration with --webhook-configuration",
			"%s, so the API server never asks irsa-webhook to mutate pods", what)
		r.skip(CheckWebhookCABundle, "no webhook configuration")
		return
	}
	for _, f := range found {
		switch {
		case !coversPodCreate(f.webhook):
			r.add(CheckWebhookConfiguration, StatusFail,
				"add a rule with operations [CREATE] on resources [pods] in API group \"\"",
				"webhook %s in %s is not called for pod CREATE", f.webhook.Name, f.config)
		case f.byPath:
			r.add(CheckWebhookConfiguration, StatusWarn,
				"pass --webhook-configuration to name irsa-webhook's configuration if this is not it",
				"webhook %s in %s calls path /mutate for pods; taken to be irsa-webhook by its path alone", f.webhook.Name, f.config)
		default:
			r.add(CheckWebhookConfiguration, StatusPass, "", "webhook %s in %s is called for pod CREATE", f.webhook.Name, f.config)
		}
		r.checkNamespaceSelector(ctx, f)
		r.checkCABundle(ctx, f)
	}
}

// checkNamespaceSelector checks that the webhook is called for pods of the
// ServiceAccount's namespace at all.
func (r *run) checkNamespaceSelector(ctx context.Context, f foundWebhook) {
	sel := f.webhook.NamespaceSelector
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		r.add(CheckWebhookConfiguration, StatusFail, "fix the webhook's namespaceSelector",
			"webhook %s in %s has an invalid namespaceSelector: %v", f.webhook.Name, f.config, err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	ns, err := r.kube.CoreV1().Namespaces().Get(ctx, r.cfg.Namespace, metav1.GetOptions{})
	if err != nil {
		r.add(CheckWebhookConfiguration, StatusWarn, "grant get on namespaces to the user doctor runs as, to check the namespaceSelector",
			"could not read namespace %s to check webhook %s's namespaceSelector: %s", r.cfg.Namespace, f.webhook.Name, oneLine(err))
		return
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		r.add(CheckWebhookConfiguration, StatusFail,
			fmt.Sprintf("change namespace %s's labels, or the webhook's namespaceSelector (%s), so that they match", r.cfg.Namespace, selector),
			"webhook %s in %s skips namespace %s: its labels %v do not match the namespaceSelector", f.webhook.Name, f.config, r.cfg.Namespace, ns.Labels)
	}
}

// checkCABundle connects to the webhook the way the API server does and
// verifies its serving certificate against the caBundle.
func (r *run) checkCABundle(ctx context.Context, f foundWebhook) {
	cc := f.webhook.ClientConfig
	who := fmt.Sprintf("webhook %s in %s", f.webhook.Name, f.config)
	injectFix := "set clientConfig.caBundle to the PEM of the CA that signed the webhook's serving certificate (with cert-manager: the cert-manager.io/inject-ca-from annotation)"
	if len(cc.CABundle) == 0 {
		r.add(CheckWebhookCABundle, StatusFail, injectFix, "%s has an empty caBundle; the API server cannot verify it", who)
		return
	}
	pool, err := certpool.New(cc.CABundle)
	if err != nil {
		r.add(CheckWebhookCABundle, StatusFail, injectFix, "%s: caBundle %v", who, err)
		return
	}

	var addr, serverName, target string
	switch {
	case cc.URL != nil:
		u, err := url.Parse(*cc.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			r.add(CheckWebhookCABundle, StatusFail, "set clientConfig.url to https://host[:port]/mutate", "%s: url %q is not an https URL", who, *cc.URL)
			return
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		serverName, addr, target = u.Hostname(), net.JoinHostPort(u.Hostname(), port), *cc.URL
	case cc.Service != nil:
		port := int32(443)
		if cc.Service.Port != nil {
			port = *cc.Service.Port
		}
		// The name the API server verifies the certificate for.
		serverName = cc.Service.Name + "." + cc.Service.Namespace + ".svc"
		addr = net.JoinHostPort(serverName, strconv.Itoa(int(port)))
		target = "service " + cc.Service.Namespace + "/" + cc.Service.Name
	default:
		r.add(CheckWebhookCABundle, StatusFail, "give the webhook a clientConfig.service or clientConfig.url", "%s has neither service nor url", who)
		return
	}

	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err == nil {
		_ = conn.Close()
		r.add(CheckWebhookCABundle, StatusPass, "", "%s: caBundle verifies the serving certificate of %s", who, target)
		return
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		r.add(CheckWebhookCABundle, StatusFail,
			injectFix+"; or reissue the serving certificate for "+serverName,
			"%s: caBundle does not verify the serving certificate of %s: %s", who, target, oneLine(err))
		return
	}
	fix := "run doctor where the webhook is reachable (in the cluster, or through kubectl port-forward and a url: registration)"
	if cc.Service != nil {
		fix = "a service: webhook is usually only reachable inside the cluster; run doctor in a pod there to check it"
	}
	r.add(CheckWebhookCABundle, StatusWarn, fix, "%s: could not connect to %s from here to check its certificate: %s", who, addr, oneLine(err))
}
