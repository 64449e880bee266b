package identity

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ctxKey is unexported so that only this package can put a Principal in a
// context: a handler further down cannot be handed a forged one by a
// package that merely shares a key name.
type ctxKey struct{}

// NewContext returns ctx carrying p. The transport calls it once per
// request, right after authenticating the caller.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the Principal NewContext put in ctx. ok is false when
// there is none, which is not the same as an anonymous caller: it means the
// request never passed authentication, and callers must treat it as a bug
// (refuse), not as anonymous.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// FromPeer authenticates the caller of a gRPC server handler from its
// connection: the verified client certificate of a TLS connection, or the
// anonymous Principal when the connection is not TLS or the client sent no
// certificate. A certificate the TLS layer did not verify is an error
// (ErrUnverified), never an identity.
func FromPeer(ctx context.Context) (Principal, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return Principal{}, ErrNoPeer
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		// Plaintext (--insecure) or a transport that proves nothing we read.
		return Principal{}, nil
	}
	return FromTLS(info.State)
}

// FromTLS authenticates the peer of a server-side TLS connection (for
// listeners that are not gRPC, such as the Raft stream layer). The chain
// must have been verified by the handshake: ServerConfig's policies do that.
func FromTLS(cs tls.ConnectionState) (Principal, error) {
	if len(cs.PeerCertificates) == 0 {
		return Principal{}, nil
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Principal{}, fmt.Errorf("%w: certificate %s", ErrUnverified, describeCert(cs.PeerCertificates[0]))
	}
	return FromCertificate(cs.VerifiedChains[0][0])
}
