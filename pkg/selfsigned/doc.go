// Package selfsigned gives the webhook a serving certificate on clusters
// without cert-manager (irsa-webhook serve --self-signed-ca).
//
// Every replica runs a Provider. It keeps a CA certificate, the serving
// certificate and its key in one Secret, serves that certificate through
// tls.Config.GetCertificate, and keeps the caBundle of the webhook
// configuration equal to the Secret's CAs:
//
//   - The first replica to find the Secret missing or empty generates a CA,
//     signs a serving certificate for the Service's DNS names with it, and
//     writes both. Writes carry the resourceVersion that was read, so when
//     two replicas race, the API server accepts one write and the other
//     replica gets a conflict, re-reads the Secret and adopts the winner's.
//   - The serving certificate is renewed at 2/3 of its lifetime, the same
//     way: whoever is first writes, the others adopt.
//   - A replica serves a certificate only after the caBundle trusts its CA,
//     so the API server never meets a certificate it cannot verify.
//   - The CA's private key is used once, to sign, and then discarded: it is
//     never stored. A renewal therefore makes a new CA too, and the previous
//     CA stays in ca.crt and the caBundle until it expires, so replicas
//     that have not yet re-read the Secret keep being trusted. Keeping it is
//     harmless: nobody holds its key.
//
// Every replica re-reads the Secret and the webhook configuration on an
// interval, which also restores a caBundle that someone overwrote.
//
// The Provider needs get and update on its Secret and on its webhook
// configuration, both restricted by resourceNames. It creates the Secret
// only when it is missing; RBAC cannot restrict "create" to one name, so the
// install ships the Secret empty and grants no create.
package selfsigned
