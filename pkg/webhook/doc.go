// Package webhook is the admission handler: it has a Pod CREATE decoded
// (only the fields it reads, see admissionjson.DecodePod), looks up the
// Pod's ServiceAccount, asks package identity what the Pod gets, has
// package mutate add it, and answers with what was added as a JSON patch
// (admissionjson.Patch). Server is its HTTPS server.
//
// Every outcome maps to one response (see decide): not opted in → allowed
// without a patch; an undecodable request → 400; a ServiceAccount that cannot
// be looked up → denied, so a Pod that should have had credentials is never
// admitted without them; a role its namespace's
// irsa-webhook.io/allowed-role-arns annotation does not allow → denied (403)
// or, with --role-policy-action=warn, allowed without credentials and with a
// warning (for a profile's role: without that profile); a Pod whose
// irsa-webhook.io/container-profiles asks for a profile its ServiceAccount
// does not grant → denied (403); our own failure, such as a mutation the
// patch cannot express → 500. Soft problems become
// admission warnings, which kubectl shows to the person who made the Pod.
package webhook
