package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestNodeCertificate(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	before := time.Now()
	iss, err := ca.IssueNode(NodeRequest{NodeID: "n1", Region: "eu-west",
		DNSNames: []string{"n1.meridian.test", "N1.meridian.test", "localhost"},
		IPs:      []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("::ffff:10.0.0.1"), net.ParseIP("fd00::1")}})
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Cert
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://meridian.test/node/n1" || iss.ID.String() != c.URIs[0].String() {
		t.Errorf("URIs %v", c.URIs)
	}
	if c.Subject.CommonName != "n1" || !slices.Equal(c.Subject.OrganizationalUnit, []string{"eu-west"}) {
		t.Errorf("subject %v", c.Subject)
	}
	if !slices.Equal(c.DNSNames, []string{"n1.meridian.test", "localhost"}) {
		t.Errorf("DNS SANs %v (a repeat differing in case counts once)", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 || c.IPAddresses[0].String() != "10.0.0.1" || c.IPAddresses[1].String() != "fd00::1" {
		t.Errorf("IP SANs %v", c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v", c.ExtKeyUsage)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("KeyUsage %v IsCA %v", c.KeyUsage, c.IsCA)
	}
	if got := c.NotAfter.Sub(before); got < DefaultLeafValidity-time.Minute || got > DefaultLeafValidity+time.Minute {
		t.Errorf("valid for %v", got)
	}
	if !slices.Equal(c.AuthorityKeyId, ca.Certificate().SubjectKeyId) || len(c.SubjectKeyId) != 20 {
		t.Errorf("AKI %x, CA SKI %x, SKI %x", c.AuthorityKeyId, ca.Certificate().SubjectKeyId, c.SubjectKeyId)
	}
	if !iss.Key.PublicKey.Equal(c.PublicKey) || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Error("wrong key")
	}
	if other := issueNode(t, ca, "n1"); other.Key.Equal(iss.Key) || other.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("a second certificate reused the key or the serial")
	}
}

func TestClientCertificate(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	iss, err := ca.IssueClient(ClientRequest{Name: "alice", Validity: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Cert
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://meridian.test/client/alice" {
		t.Errorf("URIs %v", c.URIs)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v", c.ExtKeyUsage)
	}
	if len(c.DNSNames)+len(c.IPAddresses) != 0 || len(c.Subject.OrganizationalUnit) != 0 {
		t.Errorf("a client certificate with host SANs or a region: %v %v %v", c.DNSNames, c.IPAddresses, c.Subject)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d != 7*24*time.Hour+backdate {
		t.Errorf("valid for %v", d)
	}
}

// The reference SPIFFE implementation accepts what we issue as X509-SVIDs
// of our trust domain, so SPIFFE-aware peers (Envoy, go-spiffe) will too.
func TestIssuedAreX509SVIDs(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	bundle := x509bundle.FromX509Authorities(ca.TrustDomain(), []*x509.Certificate{ca.Certificate()})
	for _, iss := range []*Issued{issueNode(t, ca, "n1"), issueClient(t, ca, "alice")} {
		id, _, err := x509svid.Verify([]*x509.Certificate{iss.Cert}, bundle)
		if err != nil {
			t.Fatalf("%s: %v", iss.ID, err)
		}
		if id != iss.ID {
			t.Fatalf("verified as %s, issued as %s", id, iss.ID)
		}
	}
}

// tlsPair returns a tls.Certificate for iss.
func tlsPair(t *testing.T, iss *Issued) tls.Certificate {
	t.Helper()
	keyPEM, err := iss.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(iss.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// handshake runs one TLS 1.3 handshake over 127.0.0.1 between a server
// presenting serverCert (and requiring a client certificate from pool) and
// a client presenting clientCert (nil: none) that trusts pool. It returns
// both sides' errors and the certificates each side saw. With serverName
// "" the client verifies as SPIFFE peers do: the chain and serverAuth, no
// host name (the identity is the URI SAN, which the caller checks).
func handshake(t *testing.T, pool *x509.CertPool, serverCert tls.Certificate, clientCert *tls.Certificate, serverName string) (srvErr, cliErr error, srvSaw, cliSaw []*x509.Certificate) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		err  error
		peer []*x509.Certificate
	}
	done := make(chan result, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		srv := tls.Server(conn, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{serverCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		})
		err = srv.HandshakeContext(ctx)
		done <- result{err, srv.ConnectionState().PeerCertificates}
	}()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: serverName}
	if serverName == "" {
		cfg.InsecureSkipVerify = true // replaced by the check below, not dropped
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyServerChain(pool, raw)
		}
	}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", lis.Addr().String())
	if err == nil {
		tc := conn.(*tls.Conn)
		cs := tc.ConnectionState()
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %x, not TLS 1.3", cs.Version)
		}
		cliSaw = cs.PeerCertificates
		// In TLS 1.3 the server's verdict on the client certificate
		// arrives after the client's handshake: read to learn it.
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		if isEOF(err) {
			err = nil
		}
		conn.Close()
	}
	r := <-done
	return r.err, err, r.peer, cliSaw
}

// verifyServerChain checks a server's chain against pool for serverAuth,
// without a host name.
func verifyServerChain(pool *x509.CertPool, raw [][]byte) error {
	var certs []*x509.Certificate
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return errors.New("no server certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func TestNodeToNodeMutualTLS(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	a, b := issueNode(t, ca, "n1"), issueNode(t, ca, "n2")
	bPair := tlsPair(t, b)
	for _, name := range []string{"127.0.0.1", "n1.meridian.test", ""} {
		srvErr, cliErr, srvSaw, cliSaw := handshake(t, ca.Pool(), tlsPair(t, a), &bPair, name)
		if srvErr != nil || cliErr != nil {
			t.Fatalf("%s: server %v, client %v", name, srvErr, cliErr)
		}
		if len(srvSaw) == 0 || srvSaw[0].URIs[0].String() != "spiffe://meridian.test/node/n2" {
			t.Fatalf("server saw %v", srvSaw)
		}
		if len(cliSaw) == 0 || cliSaw[0].URIs[0].String() != "spiffe://meridian.test/node/n1" {
			t.Fatalf("client saw %v", cliSaw)
		}
	}
}

func TestClientCertificateAuthenticatesToANode(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	alice := tlsPair(t, issueClient(t, ca, "alice"))
	srvErr, cliErr, srvSaw, _ := handshake(t, ca.Pool(), tlsPair(t, issueNode(t, ca, "n1")), &alice, "localhost")
	if srvErr != nil || cliErr != nil || srvSaw[0].URIs[0].String() != "spiffe://meridian.test/client/alice" {
		t.Fatalf("server %v, client %v, saw %v", srvErr, cliErr, srvSaw)
	}
}

// A client certificate has no serverAuth: a caller that steals one cannot
// pose as a node's server.
func TestClientCertificateCannotServe(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	alice := issueClient(t, ca, "alice")
	node := tlsPair(t, issueNode(t, ca, "n1"))
	_, cliErr, _, _ := handshake(t, ca.Pool(), tlsPair(t, alice), &node, "")
	var inv x509.CertificateInvalidError
	if !errors.As(cliErr, &inv) || inv.Reason != x509.IncompatibleUsage {
		t.Fatalf("client accepted a client certificate as a server: %v", cliErr)
	}
	_, err := alice.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err == nil {
		t.Fatal("a client certificate verified for serverAuth")
	}
}

func TestExpiredCertificateFails(t *testing.T) {
	ca, _ := newCA(t, time.Now().Add(-400*24*time.Hour))
	old, err := ca.IssueNode(NodeRequest{NodeID: "n1", Region: "eu-west", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		Validity: 30 * 24 * time.Hour, Now: time.Now().Add(-100 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	wantErr(t, err, nil, "expired")

	// The same over TLS, on each side: an expired server certificate is
	// refused by the client, an expired client certificate by the server.
	fresh := tlsPair(t, issueNode(t, ca, "n2"))
	oldPair := tlsPair(t, old)
	_, cliErr, _, _ := handshake(t, ca.Pool(), oldPair, &fresh, "127.0.0.1")
	wantErr(t, cliErr, nil, "expired")
	srvErr, _, _, _ := handshake(t, ca.Pool(), fresh, &oldPair, "127.0.0.1")
	wantErr(t, srvErr, nil, "expired")
}

func TestForeignCAFails(t *testing.T) {
	ours, _ := newCA(t, time.Time{})
	theirs, _ := newCA(t, time.Time{}) // same trust domain name, different key
	intruder := tlsPair(t, issueNode(t, theirs, "n1"))
	srvErr, _, _, _ := handshake(t, ours.Pool(), tlsPair(t, issueNode(t, ours, "n2")), &intruder, "127.0.0.1")
	var ua x509.UnknownAuthorityError
	if !errors.As(srvErr, &ua) {
		t.Fatalf("server accepted a foreign CA's node certificate: %v", srvErr)
	}
	// And no client certificate at all.
	srvErr, _, _, _ = handshake(t, ours.Pool(), tlsPair(t, issueNode(t, ours, "n2")), nil, "127.0.0.1")
	wantErr(t, srvErr, nil, "certificate")
}
