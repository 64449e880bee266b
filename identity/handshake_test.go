package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// outcome is one real handshake over 127.0.0.1, seen from both ends.
type outcome struct {
	peer      Principal         // the server's view of the client
	served    *x509.Certificate // the certificate the client was shown
	serverErr error
	clientErr error
}

// handshake runs one TLS connection between the configs and exchanges a
// byte each way: in TLS 1.3 the client's handshake completes before the
// server has judged the client certificate, so only a read shows the
// client a refusal.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var o outcome
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			o.serverErr = err
			return
		}
		c.SetDeadline(deadline)
		tc := tls.Server(c, serverCfg)
		defer tc.Close()
		if o.serverErr = tc.HandshakeContext(ctx); o.serverErr != nil {
			// Hold the connection until the client hangs up: closing now
			// could reset it before the client has read our alert.
			io.Copy(io.Discard, c)
			return
		}
		if o.peer, o.serverErr = FromTLS(tc.ConnectionState()); o.serverErr != nil {
			return
		}
		var b [1]byte
		if _, o.serverErr = io.ReadFull(tc, b[:]); o.serverErr == nil {
			_, o.serverErr = tc.Write(b[:])
		}
	}()

	d := tls.Dialer{Config: clientCfg}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		o.clientErr = err
		ln.Close() // the server may still be waiting to accept
	} else {
		c.SetDeadline(deadline)
		tc := c.(*tls.Conn)
		o.served = tc.ConnectionState().PeerCertificates[0]
		var b [1]byte
		if _, o.clientErr = tc.Write([]byte{'x'}); o.clientErr == nil {
			_, o.clientErr = io.ReadFull(tc, b[:])
		}
		tc.Close()
	}
	<-done
	return o
}

// attacker is a client that does not use a Source: it presents what it
// has (nothing when certPEM is nil) even where the server's list of
// acceptable CAs does not name its issuer, and trusts any server.
func attacker(t *testing.T, certPEM, keyPEM []byte) *tls.Config {
	cert := tls.Certificate{}
	if certPEM != nil {
		cert = tlsCert(t, certPEM, keyPEM)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
	}
}

// rawServer is a server that does not use a Source.
func rawServer(t *testing.T, certPEM, keyPEM []byte) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tlsCert(t, certPEM, keyPEM)}}
}

func mustServerConfig(t *testing.T, s *Source, p Plane) *tls.Config {
	t.Helper()
	cfg, err := s.ServerConfig(p)
	if err != nil {
		t.Fatalf("ServerConfig(%v): %v", p, err)
	}
	return cfg
}

func mustClientConfig(t *testing.T, s *Source, p ClientPolicy) *tls.Config {
	t.Helper()
	cfg, err := s.ClientConfig(p)
	if err != nil {
		t.Fatalf("ClientConfig(%+v): %v", p, err)
	}
	return cfg
}

// wantRefused checks that the handshake failed on both sides, each error
// saying what it should.
func wantRefused(t *testing.T, o outcome, serverSays, clientSays string, serverIs error) {
	t.Helper()
	t.Logf("server: %v", o.serverErr)
	t.Logf("client: %v", o.clientErr)
	if o.serverErr == nil || o.clientErr == nil {
		t.Fatalf("handshake not refused: server %v, client %v, peer %v", o.serverErr, o.clientErr, o.peer)
	}
	if !strings.Contains(o.serverErr.Error(), serverSays) {
		t.Errorf("server error %q does not say %q", o.serverErr, serverSays)
	}
	if !strings.Contains(o.clientErr.Error(), clientSays) {
		t.Errorf("client error %q does not say %q", o.clientErr, clientSays)
	}
	if serverIs != nil && !errors.Is(o.serverErr, serverIs) {
		t.Errorf("server error does not wrap %v", serverIs)
	}
}

func TestClientAPIPolicy(t *testing.T) {
	ca := newCA(t, "ca")
	nodeCert, nodeKey := ca.issue(t, nodeSpec("n1", "eu-west-1"))
	server, _ := newSource(t, nodeCert, nodeKey, ca.pem)
	srv := mustServerConfig(t, server, ClientAPI)

	t.Run("anonymous", func(t *testing.T) {
		anon, _ := newSource(t, nil, nil, ca.pem, func(c *Config) { c.TrustDomain = testTD })
		o := handshake(t, srv, mustClientConfig(t, anon, ClientPolicy{Plane: ClientAPI}))
		if o.serverErr != nil || o.clientErr != nil {
			t.Fatalf("server %v, client %v", o.serverErr, o.clientErr)
		}
		if !o.peer.IsAnonymous() || o.peer != (Principal{}) {
			t.Fatalf("peer = %v, want anonymous", o.peer)
		}
	})
	t.Run("anonymous without a Source", func(t *testing.T) {
		o := handshake(t, srv, attacker(t, nil, nil))
		if o.serverErr != nil || o.clientErr != nil || !o.peer.IsAnonymous() {
			t.Fatalf("server %v, client %v, peer %v", o.serverErr, o.clientErr, o.peer)
		}
	})

	accepted := []struct {
		name string
		spec leafSpec
		kind Kind
	}{
		{"client", clientSpec("alice"), KindClient},
		{"company workload", leafSpec{uris: []string{"spiffe://corp.example/ns/pay/sa/api"}}, KindWorkload},
		{"node", nodeSpec("n2", "us-east-1"), KindNode},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := ca.issue(t, tc.spec)
			cli, _ := newSource(t, certPEM, keyPEM, ca.pem, func(c *Config) { c.TrustDomain = testTD })
			o := handshake(t, srv, mustClientConfig(t, cli, ClientPolicy{Plane: ClientAPI}))
			if o.serverErr != nil || o.clientErr != nil {
				t.Fatalf("server %v, client %v", o.serverErr, o.clientErr)
			}
			want, _ := cli.Identity()
			if o.peer != want || o.peer.Kind != tc.kind || o.peer.Method != AuthMTLS {
				t.Fatalf("peer = %v, want %v", o.peer, want)
			}
		})
	}

	other := newCA(t, "other")
	refused := []struct {
		name                   string
		certPEM, keyPEM        []byte
		serverSays, clientSays string
		serverIs               error
	}{
		{name: "self-signed", serverSays: "unknown authority", clientSays: "unknown certificate authority"},
		{name: "another CA", serverSays: "unknown authority", clientSays: "unknown certificate authority"},
		{name: "node of another trust domain", serverSays: "node of another trust domain", clientSays: "bad certificate", serverIs: ErrNotNode},
		{name: "no SPIFFE ID", serverSays: "no SPIFFE ID", clientSays: "bad certificate", serverIs: ErrNoIdentity},
		{name: "no clientAuth usage", serverSays: "incompatible key usage", clientSays: "bad certificate"},
		{name: "expired", serverSays: "expired", clientSays: "expired"},
	}
	refused[0].certPEM, refused[0].keyPEM = selfSigned(t, clientSpec("eve"))
	refused[1].certPEM, refused[1].keyPEM = other.issue(t, clientSpec("eve"))
	refused[2].certPEM, refused[2].keyPEM = ca.issue(t, leafSpec{uris: []string{"spiffe://other.test/node/n1"}})
	refused[3].certPEM, refused[3].keyPEM = ca.issue(t, leafSpec{dns: []string{"eve.example"}})
	refused[4].certPEM, refused[4].keyPEM = ca.issue(t, leafSpec{uris: []string{"spiffe://meridian.test/client/eve"}, usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	refused[5].certPEM, refused[5].keyPEM = ca.issue(t, clientSpec("eve").expired())
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, handshake(t, srv, attacker(t, tc.certPEM, tc.keyPEM)), tc.serverSays, tc.clientSays, tc.serverIs)
		})
	}
}

func TestClusterPlanePolicy(t *testing.T) {
	ca := newCA(t, "ca")
	// A CA in the same bundle that names another trust domain: it may
	// vouch for that domain only.
	scoped := newCA(t, "scoped", "spiffe://other.test")
	nodeCert, nodeKey := ca.issue(t, nodeSpec("n1", "eu-west-1"))
	server, _ := newSource(t, nodeCert, nodeKey, bundle(ca, scoped))
	srv := mustServerConfig(t, server, ClusterPlane)

	t.Run("node", func(t *testing.T) {
		certPEM, keyPEM := ca.issue(t, nodeSpec("n2", "us-east-1"))
		peer, _ := newSource(t, certPEM, keyPEM, ca.pem)
		o := handshake(t, srv, mustClientConfig(t, peer, ClientPolicy{Plane: ClusterPlane, NodeID: "n1"}))
		if o.serverErr != nil || o.clientErr != nil {
			t.Fatalf("server %v, client %v", o.serverErr, o.clientErr)
		}
		if o.peer.Kind != KindNode || o.peer.Name != "n2" || o.peer.Region != "us-east-1" || !o.peer.IsNodeOf(server.TrustDomain()) {
			t.Fatalf("peer = %v, want node n2 of us-east-1", o.peer)
		}
	})

	other := newCA(t, "other")
	refused := []struct {
		name                   string
		certPEM, keyPEM        []byte
		serverSays, clientSays string
		serverIs               error
	}{
		{name: "no certificate", serverSays: "didn't provide a certificate", clientSays: "certificate required"},
		{name: "self-signed", serverSays: "unknown authority", clientSays: "unknown certificate authority"},
		{name: "another CA", serverSays: "unknown authority", clientSays: "unknown certificate authority"},
		{name: "client posing as a node", serverSays: "admits only spiffe://meridian.test/node/<id>", clientSays: "bad certificate", serverIs: ErrNotNode},
		{name: "node of another trust domain", serverSays: "admits only", clientSays: "bad certificate", serverIs: ErrNotNode},
		{name: "node issued by a CA scoped elsewhere", serverSays: "scoped to another trust domain", clientSays: "bad certificate", serverIs: ErrUntrusted},
		{name: "expired", serverSays: "expired", clientSays: "expired"},
	}
	refused[1].certPEM, refused[1].keyPEM = selfSigned(t, nodeSpec("n9", ""))
	refused[2].certPEM, refused[2].keyPEM = other.issue(t, nodeSpec("n9", ""))
	refused[3].certPEM, refused[3].keyPEM = ca.issue(t, clientSpec("n9"))
	refused[4].certPEM, refused[4].keyPEM = ca.issue(t, leafSpec{uris: []string{"spiffe://other.test/node/n9"}})
	refused[5].certPEM, refused[5].keyPEM = scoped.issue(t, nodeSpec("n9", ""))
	refused[6].certPEM, refused[6].keyPEM = ca.issue(t, nodeSpec("n9", "").expired())
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, handshake(t, srv, attacker(t, tc.certPEM, tc.keyPEM)), tc.serverSays, tc.clientSays, tc.serverIs)
		})
	}
}

func TestTLS13Only(t *testing.T) {
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	s, _ := newSource(t, certPEM, keyPEM, ca.pem)
	old := attacker(t, nil, nil)
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	wantRefused(t, handshake(t, mustServerConfig(t, s, ClientAPI), old), "unsupported versions", "protocol version", nil)

	cli := mustClientConfig(t, s, ClientPolicy{Plane: ClientAPI})
	srv12 := rawServer(t, certPEM, keyPEM)
	srv12.MinVersion, srv12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	wantRefused(t, handshake(t, srv12, cli), "unsupported versions", "protocol version", nil)
}

func TestClientVerifiesServer(t *testing.T) {
	ca := newCA(t, "ca")
	other := newCA(t, "other")
	myCert, myKey := ca.issue(t, clientSpec("alice"))
	me, _ := newSource(t, myCert, myKey, ca.pem, func(c *Config) { c.TrustDomain = testTD })

	named := nodeSpec("n1", "")
	named.dns = []string{"node1.example"}
	named.ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	serverOnly := nodeSpec("n1", "")
	serverOnly.usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	selfCert, selfKey := selfSigned(t, nodeSpec("n1", ""))
	otherCert, otherKey := other.issue(t, nodeSpec("n1", ""))
	api := ClientPolicy{Plane: ClientAPI}

	tests := []struct {
		name     string
		server   leafSpec
		raw      [2][]byte // instead of server: a certificate from elsewhere
		policy   ClientPolicy
		wantIs   error
		wantSays string
	}{
		{name: "node", server: nodeSpec("n1", ""), policy: api},
		{name: "the node dialed", server: nodeSpec("n1", ""), policy: ClientPolicy{Plane: ClientAPI, NodeID: "n1"}},
		{name: "another node than dialed", server: nodeSpec("n1", ""), policy: ClientPolicy{Plane: ClientAPI, NodeID: "n2"}, wantIs: ErrNotNode, wantSays: "the server is node n1; dialed node n2"},
		{name: "expired", server: nodeSpec("n1", "").expired(), policy: api, wantIs: ErrExpired, wantSays: "expired at"},
		{name: "self-signed", raw: [2][]byte{selfCert, selfKey}, policy: api, wantIs: ErrUntrusted, wantSays: "not signed by a CA of the bundle"},
		{name: "another CA", raw: [2][]byte{otherCert, otherKey}, policy: api, wantIs: ErrUntrusted, wantSays: "not signed by a CA of the bundle"},
		{name: "a client posing as a server", server: clientSpec("mallory"), policy: api, wantIs: ErrNotNode, wantSays: "not spiffe://meridian.test/node/<id>"},
		{name: "node of another trust domain", server: leafSpec{uris: []string{"spiffe://other.test/node/n1"}}, policy: api, wantIs: ErrNotNode},
		{name: "no serverAuth usage", server: serverOnly, policy: api, wantIs: ErrUntrusted, wantSays: "lacks the serverAuth extended key usage"},
		{name: "no SPIFFE ID", server: leafSpec{dns: []string{"node1.example"}}, policy: api, wantIs: ErrNoIdentity},
		{name: "host name", server: named, policy: ClientPolicy{Plane: ClientAPI, VerifyHostname: true, ServerName: "node1.example"}},
		{name: "IP address", server: named, policy: ClientPolicy{Plane: ClientAPI, VerifyHostname: true, ServerName: "127.0.0.1"}},
		{name: "wrong host name", server: named, policy: ClientPolicy{Plane: ClientAPI, VerifyHostname: true, ServerName: "evil.example"}, wantIs: ErrHostname, wantSays: "evil.example"},
		{name: "dialed by IP without a name", server: named, policy: ClientPolicy{Plane: ClientAPI, VerifyHostname: true}, wantIs: ErrHostname, wantSays: "no server name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := tc.raw[0], tc.raw[1]
			if certPEM == nil {
				certPEM, keyPEM = ca.issue(t, tc.server)
			}
			o := handshake(t, rawServer(t, certPEM, keyPEM), mustClientConfig(t, me, tc.policy))
			if tc.wantIs == nil {
				if o.clientErr != nil || o.serverErr != nil {
					t.Fatalf("client %v, server %v", o.clientErr, o.serverErr)
				}
				return
			}
			t.Logf("client: %v", o.clientErr)
			if !errors.Is(o.clientErr, tc.wantIs) || !strings.Contains(fmtErr(o.clientErr), tc.wantSays) {
				t.Fatalf("client error %v, want %v saying %q", o.clientErr, tc.wantIs, tc.wantSays)
			}
			if o.serverErr == nil || !strings.Contains(o.serverErr.Error(), "bad certificate") {
				t.Errorf("server error %v, want the client's bad certificate alert", o.serverErr)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestConfigRefusals(t *testing.T) {
	ca := newCA(t, "ca")
	clientCert, clientKey := ca.issue(t, clientSpec("alice"))
	client, _ := newSource(t, clientCert, clientKey, ca.pem)
	anon, _ := newSource(t, nil, nil, ca.pem, func(c *Config) { c.TrustDomain = testTD })

	if _, err := client.ClientConfig(ClientPolicy{Plane: ClusterPlane}); !errors.Is(err, ErrNotNode) {
		t.Errorf("cluster-plane dialer with a client certificate: %v, want ErrNotNode", err)
	}
	if _, err := anon.ClientConfig(ClientPolicy{Plane: ClusterPlane}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("cluster-plane dialer without certificate: %v, want ErrNoCertificate", err)
	}
	if _, err := anon.ServerConfig(ClientAPI); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("server without certificate: %v, want ErrNoCertificate", err)
	}
	if _, err := client.ServerConfig(0); err == nil {
		t.Error("ServerConfig accepted the zero plane")
	}
	if _, err := client.ClientConfig(ClientPolicy{}); err == nil {
		t.Error("ClientConfig accepted the zero plane")
	}
	if _, err := client.ServerCredentials(0); err == nil {
		t.Error("ServerCredentials accepted the zero plane")
	}
	if _, err := client.ClientCredentials(ClientPolicy{}); err == nil {
		t.Error("ClientCredentials accepted the zero plane")
	}
}

// A server that asks for a certificate without verifying it must not
// turn it into an identity.
func TestFromTLSUnverified(t *testing.T) {
	ca := newCA(t, "ca")
	nodeCert, nodeKey := ca.issue(t, nodeSpec("n1", ""))
	srv := rawServer(t, nodeCert, nodeKey)
	srv.ClientAuth = tls.RequestClientCert
	certPEM, keyPEM := selfSigned(t, nodeSpec("n0", ""))
	o := handshake(t, srv, attacker(t, certPEM, keyPEM))
	if !errors.Is(o.serverErr, ErrUnverified) {
		t.Fatalf("FromTLS on an unverified certificate: %v (peer %v), want ErrUnverified", o.serverErr, o.peer)
	}
}
