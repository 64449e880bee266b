package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/internal/wait"
)

// Bounds for gossip (LAN profile: 100 ms probes, 50 ms probe timeout,
// suspicion multiplier 2) in a three-member pool, with room for -race on a
// shared two-core machine:
//   - failure detection: each member is probed within three probe
//     intervals (round robin), a failed probe and its indirect probe take
//     one interval, suspicion lasts 200 ms with three members (up to 1.2 s
//     in larger pools), and the verdict is gossiped at once: about 0.6 s;
//   - recovery after a heal: a reconnect attempt every 500 ms, a second
//     one (or gossip) to carry the refutation back: about 1 s.
const (
	gossipDetectBound  = 4 * time.Second
	gossipRecoverBound = 6 * time.Second
	lanGossipToTheDead = 2 * time.Second // = the LAN profile's push/pull interval
)

// gossipView is what nd's Members() says of each member's gossip status.
func gossipView(t *testing.T, nd *clustertest.Node) map[string]cluster.MemberStatus {
	t.Helper()
	ms, err := nd.Members(ctxFor(t, time.Second))
	if err != nil {
		return nil
	}
	out := map[string]cluster.MemberStatus{}
	for _, m := range ms {
		out[m.ID] = m.Status
	}
	return out
}

// waitGossip polls until every observer sees every target with status
// want (or SUSPECT, when want is DEAD), or bound passes; it returns how
// long that took.
func waitGossip(t *testing.T, bound time.Duration, observers, targets []*clustertest.Node, want cluster.MemberStatus) time.Duration {
	t.Helper()
	start := time.Now()
	var last []string
	ok := wait.For(bound, 0, func() bool {
		last = last[:0]
		for _, o := range observers {
			view := gossipView(t, o)
			for _, tg := range targets {
				got := view[tg.ID]
				if got != want && !(want == cluster.StatusDead && got == cluster.StatusSuspect) {
					last = append(last, fmt.Sprintf("%s sees %s %v", o.ID, tg.ID, got))
				}
			}
		}
		return len(last) == 0
	}) == nil
	if !ok {
		t.Fatalf("after %v, want %v everywhere: %s", bound, want, strings.Join(last, "; "))
	}
	return time.Since(start)
}

func TestGossipSeesPartitionedRegionDeadThenAliveAfterHeal(t *testing.T) {
	c := clustertest.StartRegions(t, threeRegions, 1)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	all := c.Live()
	waitGossip(t, clustertest.WaitTimeout, all, all, cluster.StatusAlive)

	cut := c.InRegion("ap")
	majority := append(c.InRegion("us"), c.InRegion("eu")...)
	for _, r := range otherRegions("ap") {
		c.Sim.Partition("ap", r)
	}
	// Both sides take the other for dead: gossip no longer flows across.
	detect := waitGossip(t, gossipDetectBound, majority, cut, cluster.StatusDead)
	waitGossip(t, gossipDetectBound, cut, majority, cluster.StatusDead)
	// ... while the majority still sees itself alive.
	waitGossip(t, gossipDetectBound, majority, majority, cluster.StatusAlive)

	c.Sim.HealAll()
	healed := waitGossip(t, gossipRecoverBound, all, all, cluster.StatusAlive)
	t.Logf("short partition: seen after %v, heal seen after %v", detect, healed)
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})

	// A long partition: the majority's autopilot acts on the verdict and
	// removes the cut-off voter after its grace (1.5 s), and the fault
	// outlasts gossip-to-the-dead (2 s in the LAN profile), after which
	// memberlist alone would never contact ap again: only the reconnect
	// loop brings it back.
	for _, r := range otherRegions("ap") {
		c.Sim.Partition("ap", r)
	}
	waitGossip(t, gossipDetectBound, majority, cut, cluster.StatusDead)
	waitGossip(t, gossipDetectBound, cut, majority, cluster.StatusDead)
	dead := time.Now()
	testwait.Eventually(t, clustertest.WaitTimeout, "autopilot to remove the cut-off voter", func() bool { return c.Role(cut[0].ID) == cluster.RoleNone })
	// The fault's duration is the scenario, not a wait for a condition.
	<-time.After(time.Until(dead.Add(lanGossipToTheDead + 250*time.Millisecond)))
	c.Sim.HealAll()
	healed = waitGossip(t, gossipRecoverBound, all, all, cluster.StatusAlive)
	t.Logf("long partition: heal seen after %v", healed)
	// Gossip brings ap back: autopilot re-adds it and restores the spread.
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	mustCreate(t, cut[0], "k-after-gossip-heal")
}

func TestGossipTakesSimulatedLatencyWithoutFalseFailures(t *testing.T) {
	const oneWay = 100 * time.Millisecond
	c := clustertest.StartRegions(t, threeRegions, 1, func(cfg *cluster.Config) {
		cfg.Gossip.RTT = 2 * oneWay // probes wait 600 ms: latency is not failure
	})
	c.WaitVoters(map[string]int{"us": 1, "eu": 1, "ap": 1})
	all := c.Live()
	waitGossip(t, clustertest.WaitTimeout, all, all, cluster.StatusAlive)

	// Everything leaving ap (to us directly or relayed through eu) takes
	// oneWay, so an update ap advertises cannot reach us sooner.
	c.Sim.SetLatency("ap", "us", oneWay, 0)
	c.Sim.SetLatency("ap", "eu", oneWay, 0)
	latencyOn := time.Now()
	ap, us := c.InRegion("ap")[0], c.InRegion("us")[0]
	for _, healthy := range []bool{false, true, false, true} {
		start := time.Now()
		ap.SetHealthy(healthy)
		if wait.For(clustertest.WaitTimeout, 0, func() bool {
			ms, err := us.Members(ctxFor(t, time.Second))
			if err != nil {
				return false
			}
			for _, m := range ms {
				if m.ID == ap.ID {
					return m.Healthy == healthy
				}
			}
			return false
		}) != nil {
			t.Fatalf("us never saw ap healthy=%v", healthy)
		}
		// The simulated latency must apply (the lower bound); how soon
		// after it the update arrives is a figure, not a guarantee, on a
		// loaded machine (2.3 s was seen with every core busy).
		d := time.Since(start)
		if d < oneWay {
			t.Errorf("ap's health %v reached us after %v, sooner than the %v one-way latency", healthy, d, oneWay)
		}
		t.Logf("ap's health %v reached us after %v (one way %v)", healthy, d, oneWay)
	}
	// No member was taken for failed while latency was on: every status
	// began before it.
	for _, o := range all {
		ms, err := o.Members(ctxFor(t, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Status != cluster.StatusAlive || m.StatusSince.After(latencyOn) {
				t.Errorf("%s sees %s %v since %v (latency on at %v)", o.ID, m.ID, m.Status, m.StatusSince, latencyOn)
			}
		}
	}
}
