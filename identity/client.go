package identity

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/credentials"
)

// ClientPolicy says what a dialer requires of the server, beyond a chain
// to the current bundle with the serverAuth usage. Every Meridian server is
// a node, so the server must always present a node identity of the
// cluster's trust domain; the fields narrow that further.
type ClientPolicy struct {
	// Plane is the plane dialed. ClusterPlane also requires this Source to
	// hold a node certificate, so a misconfigured node fails when it builds
	// the dialer rather than with a remote alert on every call.
	Plane Plane
	// NodeID, when set, is the one node accepted: a node dialing a member
	// it knows, or the SDK dialing the node discovery named.
	NodeID string
	// VerifyHostname also requires a DNS or IP SAN matching the server name:
	// ServerName if set, else the name dialed (tls.Dial and gRPC fill it in
	// from the target). An IP address target is not visible at that point,
	// so dialing by IP needs ServerName set to it. For operators whose own
	// CA puts DNS names in node certificates and whose clients dial by
	// name.
	VerifyHostname bool
	// ServerName is sent as SNI and, with VerifyHostname, checked against
	// the certificate.
	ServerName string
}

// ClientConfig returns the TLS configuration of a dialer. TLS 1.3 only.
// It presents the current certificate at each handshake (none from a
// Source without one: an anonymous caller) and verifies the server against
// the current bundle.
//
// tls.Config.RootCAs is fixed for a configuration's life, so the standard
// verification is switched off (InsecureSkipVerify) and VerifyConnection
// does all of it instead, on every handshake, resumed or not: the full
// chain to the current bundle with the serverAuth usage, the validity
// period ("expired" if so), the CA's trust-domain scope, the node
// identity, and the policy's node id and host name.
func (s *Source) ClientConfig(p ClientPolicy) (*tls.Config, error) {
	if !p.Plane.valid() {
		return nil, fmt.Errorf("identity: client config for unknown %v", p.Plane)
	}
	if p.Plane == ClusterPlane {
		m := s.current()
		if m.cert == nil {
			return nil, fmt.Errorf("%w: dialing the cluster plane needs a node certificate", ErrNoCertificate)
		}
		if !m.self.IsNodeOf(m.td) {
			return nil, fmt.Errorf("%w: this certificate names %s; the cluster plane admits only nodes of %s", ErrNotNode, m.self.ID, m.td)
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: p.ServerName,
		// Verification happens in VerifyConnection, against the current
		// bundle; see above.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := s.current(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // send none: anonymous
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyServer(p, cs)
		},
		Time: s.cfg.Now,
	}, nil
}

// verifyServer is the whole verification of a server's certificate.
func (s *Source) verifyServer(p ClientPolicy, cs tls.ConnectionState) error {
	m := s.current()
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the server presented no certificate", ErrUntrusted)
	}
	chains, err := verifyChain(cs.PeerCertificates, m.pool, s.cfg.Now(), x509.ExtKeyUsageServerAuth)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	leaf := cs.PeerCertificates[0]
	pr, err := FromCertificate(leaf)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	if err := checkCAScope(chains, pr.ID); err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	switch {
	case !pr.IsNodeOf(m.td):
		return fmt.Errorf("%w: the server presented %s, not spiffe://%s/node/<id>", ErrNotNode, pr.ID, m.td)
	case p.NodeID != "" && pr.Name != p.NodeID:
		return fmt.Errorf("%w: the server is node %s; dialed node %s", ErrNotNode, logSafe(pr.Name), logSafe(p.NodeID))
	}
	if p.VerifyHostname {
		name := p.ServerName
		if name == "" {
			name = cs.ServerName
		}
		if name == "" {
			return fmt.Errorf("%w: no server name to check (dialing an IP address: set ClientPolicy.ServerName to it)", ErrHostname)
		}
		if err := leaf.VerifyHostname(name); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrHostname, pr.ID, err)
		}
	}
	return nil
}

// ClientCredentials is ClientConfig as gRPC transport credentials.
func (s *Source) ClientCredentials(p ClientPolicy) (credentials.TransportCredentials, error) {
	cfg, err := s.ClientConfig(p)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}
