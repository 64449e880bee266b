package identity

import (
	"crypto/tls"
	"fmt"
	"strconv"

	"google.golang.org/grpc/credentials"
)

// Plane names a listener's audience; each has its own policy for who may
// connect.
type Plane uint8

const (
	// ClientAPI is the client plane (gRPC API, AWS-compatible API): a client
	// certificate is verified if given, and a caller without one is
	// anonymous (authorization decides what anonymous may do). A
	// certificate claiming a node identity of another trust domain is
	// refused, so KindNode on this plane always means a node of ours.
	ClientAPI Plane = iota + 1
	// ClusterPlane is node-to-node traffic (Raft, forwarding, join, peer
	// calls): only a certificate chaining to the bundle and naming
	// spiffe://<trust domain>/node/<id> passes; no certificate, a client
	// certificate, or another trust domain's node is refused at the
	// handshake.
	ClusterPlane
)

func (p Plane) String() string {
	switch p {
	case ClientAPI:
		return "client API"
	case ClusterPlane:
		return "cluster plane"
	}
	return "plane(" + strconv.Itoa(int(p)) + ")"
}

func (p Plane) valid() bool { return p == ClientAPI || p == ClusterPlane }

// ServerConfig returns the TLS configuration of a listener of the given
// plane. TLS 1.3 only. Every handshake gets a configuration built from the
// material current at that moment (GetConfigForClient), so reloaded
// certificates and CAs apply to the next connection with no restart.
//
// Session tickets are off: a resumed session would skip verifying the
// client against the current bundle, so a CA removed after a rotation
// would keep admitting its certificates. gRPC and Raft keep connections
// open, so full handshakes cost little.
//
// The configuration returned by GetConfigForClient carries no NextProtos:
// gRPC's credentials.NewTLS adds h2 to it; other ALPN users must wrap
// GetConfigForClient likewise.
func (s *Source) ServerConfig(plane Plane) (*tls.Config, error) {
	if !plane.valid() {
		return nil, fmt.Errorf("identity: server config for unknown %v", plane)
	}
	if s.current().cert == nil {
		return nil, fmt.Errorf("%w: a server needs a certificate", ErrNoCertificate)
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.handshakeConfig(plane, s.current()), nil
		},
	}, nil
}

// handshakeConfig is one handshake's configuration over one material, so
// the certificate presented, the pool verifying the client and the trust
// domain checked all come from the same load.
func (s *Source) handshakeConfig(plane Plane, m *material) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if plane == ClusterPlane {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		Certificates:           []tls.Certificate{*m.cert},
		ClientAuth:             auth,
		ClientCAs:              m.pool,
		Time:                   s.cfg.Now,
		// crypto/tls has verified the chain (with clientAuth usage) against
		// m.pool by now, and alerted the client with the reason: an expired
		// certificate reads "expired" on both sides. What remains is
		// identity.
		VerifyConnection: func(cs tls.ConnectionState) error {
			return checkClient(plane, m, cs)
		},
	}
}

// checkClient applies the plane's identity rules to a verified client.
func checkClient(plane Plane, m *material, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if plane == ClusterPlane { // crypto/tls refuses first; never rely on it alone
			return fmt.Errorf("%w: the cluster plane requires a node certificate", ErrNotNode)
		}
		return nil
	}
	p, err := FromTLS(cs)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if err := checkCAScope(cs.VerifiedChains, p.ID); err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	switch {
	case plane == ClusterPlane && !p.IsNodeOf(m.td):
		return fmt.Errorf("%w: the cluster plane admits only spiffe://%s/node/<id>; the client presented %s", ErrNotNode, m.td, p.ID)
	case p.Kind == KindNode && !p.IsNodeOf(m.td):
		return fmt.Errorf("%w: %s is a node of another trust domain (this cluster is %s)", ErrNotNode, p.ID, m.td)
	}
	return nil
}

// ServerCredentials is ServerConfig as gRPC transport credentials.
func (s *Source) ServerCredentials(plane Plane) (credentials.TransportCredentials, error) {
	cfg, err := s.ServerConfig(plane)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}
