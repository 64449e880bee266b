package identity

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so
// callers (the transport's error mapping, the node's startup) can tell a bad
// certificate from a missing file with errors.Is, while the text names the
// file or the certificate and what is wrong with it.
var (
	// ErrNoIdentity: a certificate carries no SPIFFE ID (no URI SAN).
	ErrNoIdentity = errors.New("no SPIFFE ID")
	// ErrInvalidIdentity: a certificate's identity breaks the X509-SVID rules
	// or Meridian's: more than one URI SAN, a URI that is not a SPIFFE ID, a
	// CA certificate, or a malformed node or client name.
	ErrInvalidIdentity = errors.New("invalid identity")
	// ErrNoPeer: FromPeer found no gRPC peer in the context (not called from
	// a gRPC server handler).
	ErrNoPeer = errors.New("no gRPC peer in context")
	// ErrUnverified: a connection presented a client certificate that the
	// TLS layer did not verify (a server config that only requests
	// certificates). It names nobody: trusting it would let anyone claim
	// any identity.
	ErrUnverified = errors.New("peer certificate not verified")
	// ErrLoad: certificate, key or CA bundle files could not be loaded. The
	// message names the file and says what is wrong with it.
	ErrLoad = errors.New("load TLS material")
	// ErrExpired: a certificate's validity period has ended.
	ErrExpired = errors.New("expired")
	// ErrNotYetValid: a certificate's validity period has not begun (a
	// fresh certificate on a node whose clock is behind, usually).
	ErrNotYetValid = errors.New("not yet valid")
	// ErrUntrusted: a certificate does not chain to a CA of the current
	// bundle (with the right extended key usage), or its CA may not vouch
	// for its trust domain.
	ErrUntrusted = errors.New("certificate not trusted")
	// ErrNotNode: a peer that must be a node of this cluster's trust domain
	// is not (a client certificate, another trust domain, another node id).
	ErrNotNode = errors.New("not a node of this cluster")
	// ErrHostname: the server's certificate does not name the host dialed.
	ErrHostname = errors.New("certificate does not match the server name")
	// ErrNoCertificate: this Source has no certificate of its own to present
	// (it was configured with a CA bundle only).
	ErrNoCertificate = errors.New("no certificate configured")
)
