package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/internal/testwait"
)

// createKey builds a CREATE_KEY command for id with request id "req-"+id.
func createKey(t testing.TB, id string) *fsmpb.Command {
	t.Helper()
	k := &fsmpb.Key{
		Id:    id,
		State: fsmpb.KeyState_KEY_STATE_ENABLED,
		Versions: []*fsmpb.KeyVersion{{
			Version: 1, WrappedMaterial: []byte("wrapped-not-plaintext"), DomainKeyVersion: 1,
		}},
	}
	cmd, err := fsm.NewCommand(fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, &fsmpb.CreateKey{Key: k}, "req-"+id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustCreate creates key id through nd and returns the commit index.
func mustCreate(t testing.TB, nd *clustertest.Node, id string) uint64 {
	t.Helper()
	res, err := nd.Apply(ctxFor(t, 10*time.Second), createKey(t, id))
	if err != nil {
		t.Fatalf("create %s via %s: %v", id, nd.ID, err)
	}
	if res.GetErrorCode() != "" {
		t.Fatalf("create %s via %s: %s %s", id, nd.ID, res.GetErrorCode(), res.GetErrorMessage())
	}
	return res.GetIndex()
}

func follower(c *clustertest.Cluster, leader *clustertest.Node) *clustertest.Node {
	for _, nd := range c.Live() {
		if nd != leader {
			return nd
		}
	}
	return nil
}

// assertKeys fails unless every live node holds every key in ids.
func assertKeys(t *testing.T, c *clustertest.Cluster, ids []string) {
	t.Helper()
	for _, nd := range c.Live() {
		for _, id := range ids {
			if _, ok := nd.FSM.Key(id); !ok {
				t.Errorf("%s: acknowledged key %s missing (applied index %d)", nd.ID, id, nd.FSM.AppliedIndex())
			}
		}
	}
}

func TestBootstrapAndJoin(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	leader := c.Leader()
	if leader != c.Nodes[0] {
		t.Errorf("leader is %s, want the bootstrap node", leader.ID)
	}
	servers, err := leader.Servers(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 3 {
		t.Fatalf("raft has %d servers, want 3: %v", len(servers), servers)
	}
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			t.Errorf("server %s is %v, want voter", s.ID, s.Suffrage)
		}
	}
	// Every node learns every member's addresses through the fsm.
	testwait.Eventually(t, clustertest.WaitTimeout, "3 registrations on every node", func() bool {
		for _, nd := range c.Live() {
			if len(nd.FSM.Nodes()) != 3 {
				return false
			}
		}
		return true
	})
	for _, nd := range c.Nodes {
		reg, ok := c.Nodes[2].FSM.Node(nd.ID)
		if !ok || reg.GetApiAddr() != nd.APIAddr || reg.GetClusterAddr() != nd.ClusterAddr || reg.GetRaftAddr() != nd.RaftAddr() || reg.GetRegion() != "test-1" {
			t.Errorf("registration of %s = %v, want api %s cluster %s raft %s", nd.ID, reg, nd.APIAddr, nd.ClusterAddr, nd.RaftAddr())
		}
		id, addr := nd.Leader()
		if id != leader.ID || addr != leader.ClusterAddr {
			t.Errorf("%s sees leader %s at %s, want %s at %s", nd.ID, id, addr, leader.ID, leader.ClusterAddr)
		}
	}
	st := c.Nodes[1].Stats()
	if st.State != "Follower" || st.NumPeers != 2 || st.LeaderID != leader.ID || st.LastContact < 0 {
		t.Errorf("follower stats = %+v", st)
	}
	if ls := leader.Stats(); ls.State != "Leader" || ls.LastContact != 0 || ls.CommitIndex == 0 {
		t.Errorf("leader stats = %+v", ls)
	}

	// Joining again is a no-op: same configuration, no error.
	before := leader.Stats().LastIndex
	if err := c.Nodes[2].Join(ctxFor(t, 5*time.Second), []string{c.Nodes[1].ClusterAddr}); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	if after := leader.Stats().LastIndex; after != before {
		t.Errorf("idempotent join appended log entries: %d -> %d", before, after)
	}
}

func TestFollowerWriteIsForwardedAndVisibleEverywhere(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	f := follower(c, c.Leader())
	idx := mustCreate(t, f, "k-fwd")
	// Apply waited for the local fsm: read-your-write on the follower.
	if _, ok := f.FSM.Key("k-fwd"); !ok {
		t.Fatalf("%s does not see its own acknowledged write", f.ID)
	}
	c.WaitApplied(idx)
	assertKeys(t, c, []string{"k-fwd"})

	// A domain failure travels back as a Result, not an error.
	res, err := f.Apply(ctxFor(t, 5*time.Second), createKeyNewRequest(t, "k-fwd"))
	if err != nil {
		t.Fatal(err)
	}
	if res.GetErrorCode() != fsm.CodeAlreadyExists {
		t.Errorf("duplicate create: code %q, want %q", res.GetErrorCode(), fsm.CodeAlreadyExists)
	}
}

// createKeyNewRequest is createKey under a fresh request id.
func createKeyNewRequest(t testing.TB, id string) *fsmpb.Command {
	cmd := createKey(t, id)
	cmd.RequestId = fmt.Sprintf("req-%s-%d", id, time.Now().UnixNano())
	return cmd
}

func TestRestartedFollowerCatchesUpFromLog(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	leader := c.Leader()
	f := follower(c, leader)
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("k-before-%d", i))
		mustCreate(t, leader, ids[len(ids)-1])
	}
	f.Kill()
	var last uint64
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("k-during-%d", i))
		last = mustCreate(t, leader, ids[len(ids)-1])
	}
	f.Restart()
	c.WaitApplied(last)
	assertKeys(t, c, ids)
	if st := f.Stats(); st.SnapshotRestores != 0 {
		t.Errorf("restarted follower restored %d snapshots, want a catch-up from the log", st.SnapshotRestores)
	}
	// Restarting resumed the existing state: still 3 servers, no re-bootstrap.
	servers, err := leader.Servers(ctxFor(t, 5*time.Second))
	if err != nil || len(servers) != 3 {
		t.Fatalf("servers after restart = %v, %v", servers, err)
	}
}

func TestCatchUpFromSnapshot(t *testing.T) {
	// Few trailing logs: after a snapshot, a lagging node can only catch up
	// by installing it.
	c := clustertest.StartCluster(t, 3, func(cfg *cluster.Config) { cfg.TrailingLogs = 2 })
	leader := c.Leader()
	f := follower(c, leader)
	f.Kill()
	var ids []string
	var last uint64
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("k-snap-%d", i))
		last = mustCreate(t, leader, ids[len(ids)-1])
	}
	if err := leader.Snapshot(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := leader.Stats(); st.LastSnapshotIndex < last-1 {
		t.Fatalf("leader snapshot index %d, want about %d", st.LastSnapshotIndex, last)
	}

	f.Restart()
	late := c.AddNode(false)
	c.WaitApplied(last)
	assertKeys(t, c, ids)
	for _, nd := range []*clustertest.Node{f, late} {
		// The fsm is restored before raft records the installed snapshot.
		testwait.Eventually(t, clustertest.WaitTimeout, nd.ID+" records an installed snapshot", func() bool { return nd.Stats().LastSnapshotIndex > 0 })
		if st := nd.Stats(); st.SnapshotRestores == 0 {
			t.Errorf("%s caught up without installing a snapshot: %+v", nd.ID, st)
		}
	}
}

func TestRestartWithNewRaftPort(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	leader := c.Leader()
	f := follower(c, leader)
	oldAddr := f.RaftAddr()
	f.Kill()
	mustCreate(t, leader, "k-while-away")
	f.RestartNewRaftPort()
	if f.RaftAddr() == oldAddr {
		t.Fatalf("restart kept raft address %s", oldAddr)
	}
	servers, err := leader.Servers(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range servers {
		if string(s.ID) == f.ID {
			found = string(s.Address) == f.RaftAddr()
		}
	}
	if !found || len(servers) != 3 {
		t.Fatalf("servers = %v, want %s at %s among 3", servers, f.ID, f.RaftAddr())
	}
	idx := mustCreate(t, f, "k-after-move")
	c.WaitApplied(idx)
	assertKeys(t, c, []string{"k-while-away", "k-after-move"})
	testwait.Eventually(t, clustertest.WaitTimeout, "new raft address registered", func() bool {
		reg, ok := leader.FSM.Node(f.ID)
		return ok && reg.GetRaftAddr() == f.RaftAddr()
	})
}

// TestSecondNodeOnSameDataDirFails: a second node started on a data dir a
// live node holds fails within the lock wait and says why, instead of
// waiting forever on the Raft store's file lock.
func TestSecondNodeOnSameDataDirFails(t *testing.T) {
	cfg := clustertest.FastConfig(cluster.DefaultConfig())
	cfg.NodeID, cfg.DataDir, cfg.APIAddr, cfg.ClusterAddr, cfg.Bootstrap = "n1", t.TempDir(), "127.0.0.1:1", "127.0.0.1:2", true
	cfg.Logger = clustertest.TestLogger(t)
	first, err := cluster.New(context.Background(), cfg, fsm.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := cluster.New(ctx, cfg, fsm.New(nil))
	if err == nil {
		second.Close()
		t.Fatal("a second node opened a data dir a live node holds")
	}
	if !strings.Contains(err.Error(), "is another meridian node running on data dir "+cfg.DataDir) {
		t.Errorf("second node on the same data dir: %v, want it to name the data dir and the likely cause", err)
	}
}
