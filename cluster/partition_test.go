package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/internal/wait"
)

// state is nd's whole replicated state as its snapshot encoding.
func state(t *testing.T, nd *clustertest.Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := nd.FSM.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitSameState waits until every live node has applied the same index
// and holds byte-identical state.
func waitSameState(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	var detail string
	if wait.For(clustertest.WaitTimeout, 0, func() bool {
		live := c.Live()
		want := state(t, live[0])
		for _, nd := range live[1:] {
			if !bytes.Equal(state(t, nd), want) {
				detail = fmt.Sprintf("%s at %d, %s at %d", live[0].ID, live[0].FSM.AppliedIndex(), nd.ID, nd.FSM.AppliedIndex())
				return false
			}
		}
		return true
	}) != nil {
		t.Fatalf("replicas differ after heal: %s", detail)
	}
}

// otherRegions returns threeRegions without r.
func otherRegions(r string) []string {
	var out []string
	for _, o := range threeRegions {
		if o != r {
			out = append(out, o)
		}
	}
	return out
}

func TestPartitionedRegionRefusesWritesAndCatchesUpAfterHeal(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	mustCreate(t, c.Leader(), "k-before")

	// Cut the leader's region away: the other two must elect a leader.
	old := c.Leader()
	for _, r := range otherRegions(old.Region) {
		c.Sim.Partition(old.Region, r)
	}
	leader := c.WaitForNewLeader(old)
	var majorityFollower *clustertest.Node
	for _, nd := range c.Live() {
		if nd != old && nd != leader {
			majorityFollower = nd
		}
	}
	mustCreate(t, leader, "k-majority-1")
	last := mustCreate(t, majorityFollower, "k-majority-2") // forwarded over gRPC

	// The minority node steps down and refuses writes with ErrNoLeader
	// within the caller's deadline: a clear answer, not a hang.
	testwait.Eventually(t, clustertest.WaitTimeout, "the cut-off leader to step down", func() bool {
		id, _ := old.Leader()
		return !old.IsLeader() && id == ""
	})
	// The caller's deadline must outlast what the node needs to learn the
	// leader is gone (up to two heartbeat timeouts, raft randomises them)
	// with room for a loaded machine's scheduling: then the answer is
	// ErrNoLeader rather than a forward still waiting at the deadline.
	deadline := 2*clustertest.FastConfig(cluster.DefaultConfig()).HeartbeatTimeout + time.Second
	start := time.Now()
	_, err := old.Apply(ctxFor(t, deadline), createKey(t, "k-minority"))
	if !errors.Is(err, cluster.ErrNoLeader) { // at the deadline or sooner (noLeaderWait)
		t.Fatalf("write in the minority: %v, want ErrNoLeader", err)
	}
	if el := time.Since(start); el > deadline+500*time.Millisecond {
		t.Errorf("minority write answered after %v with a %v deadline", el, deadline)
	}
	if _, ok := old.FSM.Key("k-majority-1"); ok {
		t.Fatal("a write of the majority reached the partitioned node")
	}

	// Heal: Raft and gRPC reconnect by themselves, the node catches up
	// and its writes are forwarded again.
	c.Sim.HealAll()
	c.WaitApplied(last)
	mustCreate(t, old, "k-after-heal")
	waitSameState(t, c)
	assertKeys(t, c, []string{"k-before", "k-majority-1", "k-majority-2", "k-after-heal"})
	if _, ok := leader.FSM.Key("k-minority"); ok {
		t.Error("the write refused in the minority was applied after all")
	}

	// Cut a follower's region while its write is being forwarded: the
	// leader keeps its quorum, and the follower, whose request is held on
	// the way, still answers ErrNoLeader by its deadline instead of
	// waiting on the old leader's silence.
	leader = c.Leader()
	f := follower(c, leader)
	for _, r := range otherRegions(f.Region) {
		c.Sim.Partition(f.Region, r)
	}
	start = time.Now()
	_, err = f.Apply(ctxFor(t, deadline), createKey(t, "k-cut-follower"))
	if !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("forwarded write cut off mid-flight: %v, want ErrNoLeader", err)
	}
	if el := time.Since(start); el > deadline+500*time.Millisecond {
		t.Errorf("cut-off follower answered after %v with a %v deadline", el, deadline)
	}
	last = mustCreate(t, leader, "k-majority-3")
	if !leader.IsLeader() {
		t.Errorf("%s lost leadership though it kept a quorum", leader.ID)
	}
	c.Sim.HealAll()
	c.WaitApplied(last)
	mustCreate(t, f, "k-after-second-heal")
	waitSameState(t, c)
}

func TestOneWayBlockCutsReplicationButNotTheCluster(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	leader := c.Leader()
	var victim *clustertest.Node
	for _, nd := range c.Live() {
		if nd != leader {
			victim = nd
			break
		}
	}
	// The leader's region can no longer send to the victim's; the victim's
	// messages still arrive. The remaining pair is a quorum, so writes
	// commit, but nothing reaches the victim. Pre-vote keeps the victim's
	// elections (which do arrive) from unseating the leader.
	c.Sim.Block(leader.Region, victim.Region)
	if c.Sim.Cut(victim.Region, leader.Region) {
		t.Fatal("the reverse direction is cut too")
	}
	var last uint64
	for i := range 3 {
		last = mustCreate(t, leader, fmt.Sprintf("k-blocked-%d", i))
	}
	if !leader.IsLeader() {
		t.Fatalf("leadership moved away from %s during a one-way block", leader.ID)
	}
	for i := range 3 {
		if _, ok := victim.FSM.Key(fmt.Sprintf("k-blocked-%d", i)); ok {
			t.Fatalf("k-blocked-%d reached %s, which the leader cannot send to", i, victim.ID)
		}
	}
	testwait.Eventually(t, clustertest.WaitTimeout, "the victim to lose the leader", func() bool { id, _ := victim.Leader(); return id == "" })

	c.Sim.HealAll()
	c.WaitApplied(last)
	mustCreate(t, victim, "k-after-heal")
	waitSameState(t, c)
}
