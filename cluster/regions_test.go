package cluster_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/internal/testwait"
)

var threeRegions = []string{"us", "eu", "ap"}

// waitSpread waits for 5 voters spread 2-2-1 over the three regions.
func waitSpread(t *testing.T, c *clustertest.Cluster) map[string]int {
	t.Helper()
	var got map[string]int
	testwait.Eventually(t, clustertest.WaitTimeout, "voters spread 2-2-1", func() bool {
		got = c.VotersByRegion()
		counts := []int{got["us"], got["eu"], got["ap"]}
		slices.Sort(counts)
		return fmt.Sprint(counts) == "[1 2 2]"
	})
	return got
}

func TestRegionsSpreadFailoverAndRegionLoss(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 2)
	t.Logf("placement: %v", waitSpread(t, c))
	mustCreate(t, c.Leader(), "k-0")

	// Kill the leader: a new one is elected and writes resume.
	old := c.Leader()
	old.Kill()
	leader := c.WaitForNewLeader(old)
	mustCreate(t, follower(c, leader), "k-after-leader-kill")
	old.Restart()
	waitSpread(t, c)

	// Lose a whole region: writes continue in the other two.
	lost := "eu"
	for _, nd := range c.InRegion(lost) {
		nd.Kill()
	}
	var last uint64
	for i := range 3 {
		last = mustCreate(t, c.Leader(), fmt.Sprintf("k-no-%s-%d", lost, i))
	}
	// The region comes back, catches up, and autopilot restores the spread.
	for _, nd := range c.Nodes {
		if nd.Region == lost {
			nd.Restart()
		}
	}
	c.WaitApplied(last)
	assertKeys(t, c, []string{"k-0", "k-after-leader-kill", "k-no-eu-2"})
	if got := waitSpread(t, c); got[lost] == 0 {
		t.Errorf("region %s got no voter back: %v", lost, got)
	}
}

func TestLateJoinerPromotedDeadNodeRemovedMembersView(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	var last uint64
	for i := range 10 {
		last = mustCreate(t, c.Leader(), fmt.Sprintf("k-%d", i))
	}

	// A late joiner starts as a non-voter; with 4 servers over 3 regions a
	// 4th voter would break the odd count, so it stays one...
	us1 := c.AddNodeIn("us", "usb", false)
	if r := c.Role(us1.ID); r != cluster.RoleNonvoter {
		t.Fatalf("late joiner %s is %v right after joining, want nonvoter", us1.ID, r)
	}
	c.WaitApplied(last)
	// ...until a 5th node makes 2-2-1 possible: both are promoted.
	eu1 := c.AddNodeIn("eu", "eub", false)
	c.WaitVoters(map[string]int{"us": 2, "eu": 2, "ap": 1})

	// The membership view, from a follower: regions, roles, gossip state.
	f := follower(c, c.Leader())
	eu1.SetHealthy(false)
	testwait.Eventually(t, clustertest.WaitTimeout, "every member alive, eu-1 unhealthy, in f's view", func() bool {
		ms, err := f.Members(ctxFor(t, time.Second))
		if err != nil || len(ms) != 5 {
			return false
		}
		for _, m := range ms {
			if m.Status != cluster.StatusAlive || m.Role != cluster.RoleVoter || m.GossipAddr == "" ||
				m.Healthy != (m.ID != eu1.ID) || m.Leader != (m.ID == c.Leader().ID) {
				return false
			}
		}
		return true
	})

	// A dead node is demoted at once (it was the only voter of its region)
	// and removed only after the grace period.
	ap := c.InRegion("ap")[0]
	killed := time.Now()
	ap.Kill()
	testwait.Eventually(t, clustertest.WaitTimeout, "ap-0 removed from raft", func() bool { return c.Role(ap.ID) == cluster.RoleNone })
	if d := time.Since(killed); d < 1500*time.Millisecond {
		t.Errorf("dead node removed %v after the kill, before the 1.5s grace", d)
	}
	c.WaitVoters(map[string]int{"us": 2, "eu": 2})
	mustCreate(t, c.Leader(), "k-after-removal")
	if st := f.Stats(); st.LeaderChanges == 0 || st.ApplyLag > st.CommitIndex {
		t.Errorf("stats = %+v", st)
	}
}

func TestPreferredLeaderRegionGetsLeadershipBack(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1, func(cfg *cluster.Config) {
		cfg.Autopilot.PreferredLeaderRegion = "ap"
	})
	leaderIn := func(region string) bool {
		for _, nd := range c.Live() {
			if nd.IsLeader() {
				return nd.Region == region
			}
		}
		return false
	}
	testwait.Eventually(t, clustertest.WaitTimeout, "leadership moves to the preferred region", func() bool { return leaderIn("ap") })
	ap := c.Leader()
	ap.Kill()
	c.WaitForNewLeader(ap)
	mustCreate(t, c.Leader(), "k-while-ap-down")
	ap.Restart()
	testwait.Eventually(t, clustertest.WaitTimeout, "leadership returns to the preferred region", func() bool { return leaderIn("ap") })
	mustCreate(t, c.Leader(), "k-ap-back")
}

func TestSimulatedLatencyReachesRaftAndForwarding(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	const oneWay = 20 * time.Millisecond
	c.Sim.SetDefault(oneWay, 0)
	leader := c.Leader()
	f := follower(c, leader)
	// Warm the forwarding connection (dial under the new latency).
	mustCreate(t, f, "k-warm")
	start := time.Now()
	mustCreate(t, f, "k-far")
	// Forward to the leader and back (one RTT) plus replication to a
	// quorum (one more RTT): at least two round trips.
	if d := time.Since(start); d < 4*oneWay {
		t.Errorf("forwarded write took %v under %v one-way latency, want >= %v", d, oneWay, 4*oneWay)
	}
}
