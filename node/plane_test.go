package node_test

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/internal/wait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/nodetest"
)

// nodeToNodeMethods are every call of the cluster plane, and the DK export
// the client API once served.
var nodeToNodeMethods = []string{
	"/meridian.cluster.v1.Cluster/Apply",
	"/meridian.cluster.v1.Cluster/Join",
	"/meridian.cluster.v1.Cluster/Status",
	"/meridian.cluster.v1.DomainKeys/Versions",
	"/meridian.cluster.v1.DomainKeys/Export",
	"/meridian.cluster.v1.DomainKeys/Sync",
	"/meridian.v1.Operator/ExportDomainKeys",
}

func dialPlain(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clusterRPCs is meridian_cluster_rpcs_total{method,code} on n.
func clusterRPCs(t testing.TB, n *node.Node, method, code string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_cluster_rpcs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["code"] == code {
				return counterValue(m)
			}
		}
	}
	return 0
}

// TestClusterPlaneIsApartFromTheClientAPI: each node serves node-to-node
// calls on its cluster address only. Its client API answers Unimplemented
// to every one of them (a raw Apply or REGISTER_NODE, a Join that would
// hand out the DK, the DK peer calls), and the cluster port serves no
// client API. Over the cluster plane alone, the nodes join (each HSM
// enrolled on the way), a follower forwards writes to the leader, and a
// domain-key rotation reaches every member.
func TestClusterPlaneIsApartFromTheClientAPI(t *testing.T) {
	c := startCluster(t, 3, func(cfg *node.Config) {
		// An HSM of its own per node: joiners are enrolled through the
		// cluster plane's Join.
		cfg.HSM.SoftPath = filepath.Join(cfg.DataDir, "hsm", "domain.sealed")
	})
	leader := c.WaitLeader()
	ctx := ctxT(t)
	for _, n := range c.Nodes {
		if n.ClusterAddr() == n.APIAddr() {
			t.Fatalf("%s serves both planes on %s", n.ID(), n.APIAddr())
		}
		if err := c.Nodes[leader].Cluster().WaitForLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if wait.For(nodetest.WaitTimeout, 0, func() bool {
		for _, n := range c.Nodes {
			reg, ok := c.Nodes[leader].FSM().Node(n.ID())
			if !ok || reg.GetClusterAddr() != n.ClusterAddr() || reg.GetApiAddr() != n.APIAddr() {
				return false
			}
		}
		return true
	}) != nil {
		t.Fatalf("registrations do not carry each node's cluster address: %v", c.Nodes[leader].FSM().Nodes())
	}

	for _, n := range c.Nodes {
		api := dialPlain(t, n.APIAddr())
		for _, m := range nodeToNodeMethods {
			if err := api.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unimplemented {
				t.Errorf("%s API port, %s: %v, want Unimplemented", n.ID(), m, err)
			}
		}
		// Typed, as an attacker's client would send them.
		cl := clusterpb.NewClusterClient(api)
		if _, err := cl.Apply(ctx, &clusterpb.ApplyRequest{Command: []byte{1}}); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s API port, Apply: %v", n.ID(), err)
		}
		if _, err := cl.Join(ctx, &clusterpb.JoinRequest{NodeId: "intruder", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2",
			TransportPublicKey: []byte("key")}); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s API port, Join: %v", n.ID(), err)
		}
		cp := dialPlain(t, n.ClusterAddr())
		if _, err := apiv1.NewKeyManagementClient(cp).ListKeys(ctx, &apiv1.ListKeysRequest{}); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s cluster port serves the client API: %v", n.ID(), err)
		}
		if st, err := clusterpb.NewClusterClient(cp).Status(ctx, &clusterpb.StatusRequest{}); err != nil || st.GetNodeId() != n.ID() {
			t.Errorf("%s cluster port, Status: %v, %v", n.ID(), st, err)
		}
	}
	if _, ok := c.Nodes[leader].FSM().Node("intruder"); ok {
		t.Fatal("a join through the API port registered a node")
	}

	// A write through a follower is forwarded over the cluster plane.
	f := (leader + 1) % 3
	before := clusterRPCs(t, c.Nodes[leader], "meridian.cluster.v1.Cluster/Apply", "OK")
	res := mustCreateKey(t, c.Client(f), &apiv1.CreateKeyRequest{Description: "via a follower"})
	c.WaitApplied(res.GetCommitIndex())
	if got := clusterRPCs(t, c.Nodes[leader], "meridian.cluster.v1.Cluster/Apply", "OK"); got <= before {
		t.Fatalf("leader served %v forwarded applies on its cluster plane, want more than %v", got, before)
	}
	ct, err := c.Client(f).Encrypt(ctx, &apiv1.EncryptRequest{KeyId: res.GetKeyMetadata().GetKeyId(), Plaintext: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}

	// A domain-key rotation led by a follower reaches every member.
	stream, err := apiv1.NewOperatorClient(dialPlain(t, c.Nodes[f].APIAddr())).RotateDomainKey(ctx, &apiv1.RotateDomainKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ps []*apiv1.RotateDomainKeyProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rotate: %v (after %v)", err, ps)
		}
		ps = append(ps, p)
	}
	dist := 0
	for _, p := range ps {
		if p.GetPhase() == apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE {
			dist++
			if p.GetOutcome() != apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK {
				t.Errorf("distribute to %s: %v", p.GetNodeId(), p)
			}
		}
	}
	if last := ps[len(ps)-1]; dist != 2 || last.GetPhase() != apiv1.RotatePhase_ROTATE_PHASE_DONE || last.GetDomainKeyVersion() != 2 {
		t.Fatalf("rotation progress %v, want two members served and DONE at v2", ps)
	}
	for _, n := range c.Nodes {
		vs, err := n.HSM().DomainKeyVersions(ctx)
		if err != nil || !slices.Contains(vs, 2) {
			t.Errorf("%s holds DK versions %v (%v), want v2", n.ID(), vs, err)
		}
		if got := clusterRPCs(t, n, "meridian.cluster.v1.DomainKeys/Export", "OK"); n != c.Nodes[f] && got != 0 {
			t.Errorf("%s exported its DKs %v times; only the rotation's source exports", n.ID(), got)
		}
	}
	// The operator's sync still works from the client API, through the
	// node, which fetches over the cluster plane: nothing is missing now.
	other := (f + 1) % 3
	sync, err := apiv1.NewOperatorClient(dialPlain(t, c.Nodes[other].APIAddr())).SyncDomainKeys(ctx,
		&apiv1.SyncDomainKeysRequest{SourceApiAddr: c.Nodes[f].APIAddr()})
	if err != nil || len(sync.GetImportedVersions()) != 0 || !slices.Contains(sync.GetHsmDomainKeyVersions(), 2) {
		t.Fatalf("operator sync: %v, %v", sync, err)
	}
	// Every node still decrypts, the key now under the new DK version.
	for i := range c.Nodes {
		pt, err := c.Client(i).Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: ct.GetCiphertextBlob()})
		if err != nil || string(pt.GetPlaintext()) != "hello" {
			t.Fatalf("decrypt on %s after the rotation: %v", c.Nodes[i].ID(), err)
		}
	}
}
