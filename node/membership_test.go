package node_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/internal/wait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
)

// TestLateJoinerDeadNodeAndQuorumSafety on one node per region (three
// voters), with snapshots every 8 entries and 2 trailing logs: a node that
// joins after the log was compacted catches up by snapshot and serves at
// once; a dead voter is removed only after the 1.5 s grace, and the late
// joiner takes its vote; with two of three voters dead autopilot removes
// nothing, so the cluster recovers by itself when they return.
func TestLateJoinerDeadNodeAndQuorumSafety(t *testing.T) {
	const grace = 1500 * time.Millisecond
	c := startRegions(t, 1, func(cfg *node.Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs = 8, 2
		cfg.DeadServerGrace = grace
	})
	testwait.Eventually(t, nodetest.WaitTimeout, "three voters, one per region", func() bool { return nodetest.Spread(c.Voters()) == "[1 1 1]" })

	cl := c.RegionClient(localcluster.Regions[0], nil)
	var ids []string
	var last uint64
	for range 20 {
		res := mustCreateKey(t, cl, &apiv1.CreateKeyRequest{})
		ids, last = append(ids, res.GetKeyMetadata().GetKeyId()), res.GetCommitIndex()
	}
	pt := []byte("written before the late node existed")
	enc, err := cl.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: ids[0], Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	// Every node compacts (leadership may move before the late node joins).
	snapshotAll(t, c.Nodes)

	// The late joiner: the entries it misses are compacted away, so only
	// a snapshot can bring it up to date.
	late := c.Add(localcluster.Regions[0], nil)
	c.WaitApplied(last)
	if got := c.Nodes[late].Cluster().Stats().SnapshotRestores; got == 0 {
		t.Fatalf("late joiner %s caught up without installing a snapshot", c.Nodes[late].ID())
	}
	for _, id := range ids {
		if _, ok := c.Nodes[late].FSM().Key(id); !ok {
			t.Fatalf("late joiner lacks key %s", id)
		}
	}
	dec, err := c.PinnedClient(late).Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
	if err != nil || !bytes.Equal(dec.GetPlaintext(), pt) {
		t.Fatalf("late joiner decrypt: %q, %v", dec.GetPlaintext(), err)
	}

	// A dead voter (the only one of its region) is removed after the grace,
	// not before; the late joiner is promoted to keep three voters.
	deadIdx := c.InRegion(localcluster.Regions[1])[0]
	if c.Nodes[deadIdx].Cluster().IsLeader() {
		deadIdx = c.InRegion(localcluster.Regions[2])[0]
	}
	deadID := c.Nodes[deadIdx].ID()
	killed := time.Now()
	c.Stop(deadIdx)
	testwait.Eventually(t, nodetest.WaitTimeout, deadID+" removed from raft", func() bool { return !inRaft(c, deadID) })
	if d := time.Since(killed); d < grace {
		t.Errorf("dead node removed %v after it stopped, before the %v grace", d, grace)
	}
	testwait.Eventually(t, nodetest.WaitTimeout, "three voters again, the late joiner among them", func() bool {
		return slices.Contains(c.Voters()[localcluster.Regions[0]], c.Nodes[late].ID()) && len(allVoters(c.Voters())) == 3
	})
	t.Logf("%s removed %v after it stopped; voters now %v", deadID, time.Since(killed).Round(time.Millisecond), c.Voters())
	mustCreateKey(t, cl, &apiv1.CreateKeyRequest{Description: "after removal"})

	// Two of the three voters die: no quorum, and autopilot must not try
	// to shrink the voter set to the survivor (which would need the quorum
	// it lacks, or worse, split the cluster's history). Watch for longer
	// than the grace plus an autopilot round (2 s).
	survivor := -1
	var dead []int
	voters := allVoters(c.Voters())
	for _, id := range voters {
		i := c.Index(id)
		if survivor < 0 && c.Nodes[i].Cluster().IsLeader() {
			survivor = i
			continue
		}
		dead = append(dead, i)
	}
	if survivor < 0 || len(dead) != 2 {
		t.Fatalf("voters %v: want a leader and two others", voters)
	}
	for _, i := range dead {
		c.Stop(i)
	}
	before := raftServers(c, survivor)
	watchUntil := time.Now().Add(grace + 2500*time.Millisecond)
	_ = wait.For(time.Until(watchUntil), 0, func() bool {
		if got := raftServers(c, survivor); got != before {
			t.Errorf("configuration changed with two of three voters dead: %s -> %s", before, got)
			return true
		}
		return false
	})
	for _, i := range dead {
		c.Start(i)
	}
	res, err := cl.CreateKey(ctxT(t), &apiv1.CreateKeyRequest{Description: "quorum back"})
	if err != nil {
		t.Fatalf("write after the dead voters returned: %v", err)
	}
	c.WaitApplied(res.GetCommitIndex())
	if got := allVoters(c.Voters()); !slices.Equal(got, voters) {
		t.Errorf("voters after recovery: %v, want the same three %v", got, voters)
	}
}

// inRaft reports whether id is in the leader's Raft configuration.
func inRaft(c *nodetest.T, id string) bool {
	l := c.LeaderNode()
	if l == nil {
		return true
	}
	servers, err := l.Cluster().Servers(context.Background())
	if err != nil {
		return true
	}
	for _, s := range servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// raftServers is node i's Raft configuration as text ("" on error).
func raftServers(c *nodetest.T, i int) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	servers, err := c.Nodes[i].Cluster().Servers(ctx)
	if err != nil {
		return ""
	}
	var out []string
	for _, s := range servers {
		out = append(out, string(s.ID)+":"+s.Suffrage.String())
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// allVoters flattens a voters-by-region map.
func allVoters(v map[string][]string) []string {
	var out []string
	for _, ids := range v {
		out = append(out, ids...)
	}
	slices.Sort(out)
	return out
}
