// Package pki is Meridian's cluster certificate authority: it makes an
// ECDSA P-256 CA, issues node and client certificates from it, writes and
// loads them as PEM files, and describes any PEM file for `meridian tls
// inspect`. It imports nothing of Meridian's, so the CLI, the demo and the
// test harnesses can all issue certificates the same way.
//
// # Identities
//
// Every certificate names its holder with exactly one URI SAN, a SPIFFE ID
// (an X509-SVID, so certificates from SPIRE or cert-manager's csi-driver-spiffe
// can stand in for ours):
//
//	CA      spiffe://<trust-domain>             IsCA, CertSign|CRLSign, MaxPathLen 0
//	node    spiffe://<trust-domain>/node/<id>   ServerAuth+ClientAuth; region in Subject OU
//	client  spiffe://<trust-domain>/client/<name> ClientAuth only
//
// The CA carries its trust domain in its own URI SAN, so a CA loaded from
// disk says which trust domain it issues for and nothing needs a second
// setting that could disagree with it.
//
// The region of a node is the certificate's single Subject
// OrganizationalUnit rather than a second URI SAN: an X509-SVID carries one
// URI SAN only, a private extension would need an OID arc of our own and be
// invisible to every tool, while an OU is shown by openssl and can be set by
// cert-manager (subject.organizationalUnits) for operators who bring their
// own CA.
//
// # Keys and signers
//
// The CA signs through a crypto.Signer: CreateCA and NewCA take any signer,
// so a CA key kept inside an HSM needs only a signer for it, not a change
// here. Leaf keys are ECDSA P-256, generated fresh for every certificate.
//
// Errors wrap the sentinels below; ErrInvalidInput marks the caller's
// mistakes (a bad name, a validity out of range) and names the value at
// fault. No error or description ever holds private key material.
package pki

import "errors"

var (
	// ErrInvalidInput marks a request that cannot be issued as given: a bad
	// trust domain, node id, client name, region, DNS name, IP or validity.
	ErrInvalidInput = errors.New("invalid input")
	// ErrExists is returned instead of replacing a file unless forced.
	ErrExists = errors.New("file exists")
	// ErrNotCA marks a certificate that cannot act as the cluster CA.
	ErrNotCA = errors.New("not a usable CA certificate")
	// ErrKeyMismatch marks a private key that is not the certificate's.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrParse marks bytes that are not the PEM (or DER) expected.
	ErrParse = errors.New("cannot parse")
)
