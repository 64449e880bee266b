package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
	"github.com/meridiankms/meridian/pki"
)

// TestTLSCluster runs a 3-node cluster with TLS on every listener (one
// cluster, several behaviours, since each start costs seconds under -race):
// a key created through a follower is forwarded to the leader over the
// mutual-TLS cluster plane and replicated by Raft over mutual TLS to every
// node, which then all encrypt and decrypt with it; the API names each
// caller by its client certificate; the cluster plane and Raft refuse
// everything but this cluster's node certificates; a join is accepted only
// from the node its certificate names; and replaced certificate files are
// served to new connections without a restart.
func TestTLSCluster(t *testing.T) {
	c := nodetest.Start(t, localcluster.Options{Nodes: 3, TLS: true})
	leader := c.WaitLeader()
	c.WaitMembers()
	follower := (leader + 1) % 3
	var keyID string

	t.Run("ForwardAndReplicateOverMutualTLS", func(t *testing.T) {
		defer c.SetT(t)()
		alice := tlsClient(t, c, c.APIAddr(follower), "alice")
		res := mustCreateKey(t, alice, &apiv1.CreateKeyRequest{Description: "over TLS"})
		keyID = res.GetKeyMetadata().GetKeyId()
		c.WaitApplied(res.GetCommitIndex())
		pt := []byte("sealed over mutual TLS")
		for i := range 3 {
			enc, err := c.Client(i).Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: keyID, Plaintext: pt})
			if err != nil {
				t.Fatalf("encrypt on %s: %v", c.Node(i).ID(), err)
			}
			dec, err := c.Client((i+1)%3).Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
			if err != nil || !bytes.Equal(dec.GetPlaintext(), pt) {
				t.Fatalf("decrypt on %s of %s's ciphertext: %v", c.Node((i+1)%3).ID(), c.Node(i).ID(), err)
			}
		}
	})

	// The principal reaches the request context: the access log, written
	// from that context, names alice's SPIFFE ID on the follower that
	// served her CreateKey, and a caller without a certificate as
	// anonymous.
	t.Run("APINamesTheCaller", func(t *testing.T) {
		defer c.SetT(t)()
		anon := c.ClientTLS("unused")
		anon.GetClientCertificate = nil // present no certificate
		cfg := client.DefaultConfig(c.APIAddr(follower))
		cfg.TLS, cfg.DisableDiscovery = anon, true
		cl, err := client.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.DescribeKey(ctxT(t), &apiv1.DescribeKeyRequest{KeyId: keyID}); err != nil {
			t.Fatalf("describe without a client certificate: %v", err)
		}
		node := "node=" + c.Node(follower).ID() + " "
		alice := "principal.id=spiffe://" + localcluster.TrustDomain + "/client/alice principal.kind=client principal.method=mtls"
		if !logLine(c, node, "operation=CreateKey", alice) {
			t.Errorf("no access log line on %s names alice's certificate (%s)", c.Node(follower).ID(), alice)
		}
		if !logLine(c, node, "operation=DescribeKey", "principal.kind=anonymous") {
			t.Errorf("no access log line on %s names the caller without a certificate anonymous", c.Node(follower).ID())
		}
	})

	t.Run("ClusterPlaneRefusesAllButNodes", func(t *testing.T) {
		defer c.SetT(t)()
		addr := c.ClusterAddr(leader)
		foreign := foreignCA(t)
		clientCert := issuedPair(t, mustIssueClient(t, c.CA(), "node-2"))
		for _, tc := range []struct {
			name string
			dial grpc.DialOption
		}{
			{"plaintext", grpc.WithTransportCredentials(insecure.NewCredentials())},
			{"no certificate", rawTLS(nil)},
			{"client certificate posing as a node", rawTLS(&clientCert)},
			{"node certificate of another CA", rawTLS(ptr(issuedPair(t, mustIssueNode(t, foreign, "node-2"))))},
		} {
			conn := dial(t, addr, tc.dial)
			cl := clusterpb.NewClusterClient(conn)
			_, err := cl.Apply(ctxT(t), &clusterpb.ApplyRequest{Command: []byte{1}})
			assertRefused(t, tc.name+", Apply", err)
			_, err = cl.Join(ctxT(t), &clusterpb.JoinRequest{NodeId: "node-2", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"})
			assertRefused(t, tc.name+", Join", err)
		}
		// The control: the same raw dial with a node certificate of this
		// cluster's CA gets through, so the refusals above are the
		// handshake's.
		good := issuedPair(t, mustIssueNode(t, c.CA(), "node-9"))
		st, err := clusterpb.NewClusterClient(dial(t, addr, rawTLS(&good))).Status(ctxT(t), &clusterpb.StatusRequest{})
		if err != nil || st.GetNodeId() != c.Node(leader).ID() {
			t.Fatalf("status with a node certificate of the cluster: %v %v", st, err)
		}
	})

	t.Run("RaftRefusesAllButNodes", func(t *testing.T) {
		defer c.SetT(t)()
		addr := c.Node(leader).Cluster().RaftAddr()
		clientCert := issuedPair(t, mustIssueClient(t, c.CA(), "node-3"))
		for _, tc := range []struct {
			name string
			cert *tls.Certificate
		}{
			{"no certificate", nil},
			{"client certificate", &clientCert},
			{"node certificate of another CA", ptr(issuedPair(t, mustIssueNode(t, foreignCA(t), "node-3")))},
		} {
			err := raftExchange(addr, tc.cert)
			t.Logf("raft %s: %v", tc.name, err)
			if err == nil {
				t.Errorf("raft %s: the leader answered", tc.name)
			}
		}
		// Plaintext: the leader's TLS server reads no Raft RPC from it.
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// What a plaintext Raft peer sends first: an RPC type byte, then a
		// msgpack map (more than a TLS record header's five bytes).
		_, _ = conn.Write([]byte{0, 0x8a, 0xa4, 'T', 'e', 'r', 'm', 0x01, 0xa6, 'L', 'e', 'a', 'd', 'e', 'r', 0xc0})
		b, err := readSome(conn)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("raft plaintext: the connection stayed open")
		case err == nil && !isTLSAlert(b):
			t.Errorf("raft plaintext: the leader answered %x", b)
		}
		good := issuedPair(t, mustIssueNode(t, c.CA(), "node-9"))
		if err := raftExchange(addr, &good); err != nil {
			t.Errorf("raft handshake with a node certificate of the cluster: %v", err)
		}
	})

	t.Run("JoinOnlyAsTheCertifiedNode", func(t *testing.T) {
		defer c.SetT(t)()
		good := issuedPair(t, mustIssueNode(t, c.CA(), "node-9"))
		cl := clusterpb.NewClusterClient(dial(t, c.ClusterAddr(follower), rawTLS(&good)))
		req := &clusterpb.JoinRequest{NodeId: "node-7", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2", ClusterAddr: "127.0.0.1:3"}
		_, err := cl.Join(ctxT(t), req)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "names node node-9") {
			t.Errorf("join as node-7 with node-9's certificate: %v, want PermissionDenied naming node-9", err)
		}
		// Claiming to be a member forwarding someone's join does not help.
		fctx := metadata.AppendToOutgoingContext(ctxT(t), "meridian-forwarded", c.Node(follower).ID())
		lcl := clusterpb.NewClusterClient(dial(t, c.ClusterAddr(leader), rawTLS(&good)))
		if _, err := lcl.Join(fctx, req); status.Code(err) != codes.PermissionDenied {
			t.Errorf("forged forwarded join: %v, want PermissionDenied", err)
		}
		if _, ok := c.Node(leader).FSM().Node("node-7"); ok {
			t.Fatal("node-7 was registered")
		}
	})

	// A node refuses to start with a certificate that names another node:
	// its peers would refuse its join, far from the cause.
	t.Run("CertificateMustNameTheNode", func(t *testing.T) {
		defer c.SetT(t)()
		cfg := localcluster.Config(t.TempDir(), 3)
		tc, err := c.IssueNodeCert("node-2", cfg.Region)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
		_, err = node.Start(ctxT(t), cfg)
		if !errors.Is(err, node.ErrConfig) || !strings.Contains(err.Error(), "names node node-2, but this node's id is node-4") {
			t.Fatalf("start node-4 with node-2's certificate: %v", err)
		}
	})

	t.Run("ReloadWithoutRestart", func(t *testing.T) {
		defer c.SetT(t)()
		i := follower
		n := c.Node(i)
		// Connected before the reload: its connection must keep working.
		pinned := c.Client(i)
		if _, err := pinned.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: keyID, Plaintext: []byte("x")}); err != nil {
			t.Fatalf("encrypt before the reload: %v", err)
		}
		before := servedSerial(t, c.APIAddr(i), nil)
		tc, err := c.IssueNodeCert(n.ID(), n.Region())
		if err != nil {
			t.Fatal(err)
		}
		want := fileSerial(t, tc.CertFile)
		if want == before {
			t.Fatal("the new certificate has the old serial")
		}
		peer := issuedPair(t, mustIssueNode(t, c.CA(), "node-9"))
		testwait.Eventually(t, nodetest.WaitTimeout, "new connections present the new certificate on both planes and Raft", func() bool {
			return servedSerial(t, c.APIAddr(i), nil) == want && servedSerial(t, c.ClusterAddr(i), &peer) == want &&
				servedSerial(t, n.Cluster().RaftAddr(), &peer) == want
		})
		if n.TLS().Stats().Reloads == 0 {
			t.Error("no reload counted")
		}
		// Still serving, old connections and new: the pinned client kept
		// its connection; a new client makes a new one; a write through
		// the node is forwarded (or applied) and replicated.
		if _, err := pinned.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: keyID, Plaintext: []byte("x")}); err != nil {
			t.Fatalf("encrypt after the reload, on the connection made before it: %v", err)
		}
		res := mustCreateKey(t, tlsClient(t, c, c.APIAddr(i), "bob"), &apiv1.CreateKeyRequest{})
		c.WaitApplied(res.GetCommitIndex())
	})
}

// tlsClient is a client of node addr only, with a client certificate named
// name.
func tlsClient(t testing.TB, c *nodetest.T, addr, name string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig(addr)
	cfg.TLS, cfg.DisableDiscovery = c.ClientTLS(name), true
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// logLine reports whether one line of the cluster's logs holds every part.
func logLine(c *nodetest.T, parts ...string) bool {
	for _, line := range strings.Split(string(c.Logs.Bytes()), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// assertRefused checks that a cluster-plane call failed at the handshake
// (Unavailable, with TLS the cause) or was refused as unauthenticated.
func assertRefused(t testing.TB, what string, err error) {
	t.Helper()
	t.Logf("%s: %v", what, err)
	switch status.Code(err) {
	case codes.Unavailable, codes.Unauthenticated, codes.PermissionDenied:
	default:
		t.Errorf("%s: %v, want a refusal (Unavailable at the handshake, Unauthenticated or PermissionDenied)", what, err)
	}
}

func dial(t testing.TB, addr string, opt grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawTLS dials presenting cert (none if nil) and trusting any server, so
// that the only verification left is the server's of the client.
func rawTLS(cert *tls.Certificate) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(rawConfig(cert)))
}

func rawConfig(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec // the test checks the server's side
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// raftExchange handshakes with a Raft listener presenting cert and waits
// for the server's verdict: TLS 1.3 clients finish their handshake before
// the server has checked their certificate, so the refusal arrives as an
// alert on the first read. An accepted connection sees no data (Raft
// waits for an RPC), so a read timeout means accepted.
func raftExchange(addr string, cert *tls.Certificate) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, rawConfig(cert))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		return errors.New("raft sent data unasked")
	}
	return err
}

func readSome(conn net.Conn) ([]byte, error) {
	b := make([]byte, 64)
	n, err := conn.Read(b)
	return b[:n], err
}

// isTLSAlert: a TLS server answers a non-TLS first byte with an alert
// record (content type 21), which is a refusal, not a Raft answer.
func isTLSAlert(b []byte) bool { return len(b) > 0 && b[0] == 21 }

// servedSerial is the serial of the certificate a new TLS connection to
// addr is served.
func servedSerial(t testing.TB, addr string, cert *tls.Certificate) string {
	t.Helper()
	cfg := rawConfig(cert)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func fileSerial(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber.String()
}

// foreignCA is another CA for the same trust domain: its node
// certificates look right but chain to nothing the cluster trusts.
func foreignCA(t testing.TB) *pki.CA {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.CreateCA(pki.DefaultCAConfig(localcluster.TrustDomain), key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustIssueNode(t testing.TB, ca *pki.CA, id string) *pki.Issued {
	t.Helper()
	iss, err := ca.IssueNode(pki.NodeRequest{NodeID: id, Region: "us-east", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func mustIssueClient(t testing.TB, ca *pki.CA, name string) *pki.Issued {
	t.Helper()
	iss, err := ca.IssueClient(pki.ClientRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func issuedPair(t testing.TB, iss *pki.Issued) tls.Certificate {
	t.Helper()
	return tls.Certificate{Certificate: [][]byte{iss.Cert.Raw}, PrivateKey: iss.Key, Leaf: iss.Cert}
}

func ptr[T any](v T) *T { return &v }

// TestTLSRegionalJoinThroughAFollower: with TLS on a regional cluster
// (gossip, autopilot, node-to-node traffic through the Sim, under the TLS)
// a node joining through a follower is forwarded to the leader, which
// accepts the follower's word for it because the follower is a member and
// checked the joiner's certificate; the new node then serves a key made
// before it came.
func TestTLSRegionalJoinThroughAFollower(t *testing.T) {
	c := nodetest.Start(t, localcluster.Options{Nodes: 3, Regional: true, TLS: true})
	leader := c.WaitLeader()
	res := mustCreateKey(t, c.Client(leader), &apiv1.CreateKeyRequest{})
	follower := (leader + 1) % 3
	i := c.Add("", func(_ int, cfg *node.Config) { cfg.Join = []string{c.ClusterAddr(follower)} })
	c.WaitMembers()
	c.WaitApplied(res.GetCommitIndex())
	if _, err := c.Client(i).Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: res.GetKeyMetadata().GetKeyId(), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("encrypt on the joined node: %v", err)
	}
	if !logLine(c, "node="+c.Node(i).ID()+" ", "joined cluster", "seed="+c.ClusterAddr(follower)) {
		t.Errorf("%s did not join through %s", c.Node(i).ID(), c.Node(follower).ID())
	}
}
