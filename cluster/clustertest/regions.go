package clustertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/internal/testwait"
)

// RegionalConfig returns cfg with gossip on 127.0.0.1 (LAN timings,
// encrypted with key) and a fast autopilot: 100 ms rounds, 300 ms
// stabilization, 1.5 s dead-server grace, 1 s transfer hysteresis.
func RegionalConfig(cfg cluster.Config, key []byte) cluster.Config {
	cfg.Gossip = cluster.GossipConfig{BindAddr: "127.0.0.1:0", Key: key, LAN: true}
	cfg.Autopilot.Interval = 100 * time.Millisecond
	cfg.Autopilot.StabilizationTime = 300 * time.Millisecond
	cfg.Autopilot.DeadServerGrace = 1500 * time.Millisecond
	cfg.Autopilot.TransferHysteresis = time.Second
	return cfg
}

// StartRegions starts perRegion nodes in each region (zones "<region>a",
// "<region>b", ... in turn) with gossip and autopilot on; node traffic
// goes through c.Sim, which starts with no latency. The first node of the
// first region bootstraps; the others join through cluster-address seeds. It returns
// once every node is in Raft and sees the leader; placement converges
// afterwards (see WaitVoters).
func StartRegions(t testing.TB, regions []string, perRegion int, opts ...Option) *Cluster {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: opts, logger: TestLogger(t), Sim: netsim.New(), gossipKey: key}
	t.Cleanup(c.closeAll)
	for i := range perRegion {
		for _, r := range regions {
			c.AddNodeIn(r, fmt.Sprintf("%s%c", r, 'a'+i%3), i == 0 && r == regions[0])
			if i == 0 && r == regions[0] {
				c.Leader()
			}
		}
	}
	testwait.Eventually(c.t, WaitTimeout, "every node in raft and seeing the leader", func() bool {
		servers, err := c.Leader().Servers(context.Background())
		if err != nil || len(servers) != len(c.Live()) {
			return false
		}
		for _, nd := range c.Live() {
			if id, addr := nd.Leader(); id == "" || addr == "" {
				return false
			}
		}
		return true
	})
	return c
}

// AddNodeIn starts a node in region and zone; unless bootstrap it joins
// through the live nodes' cluster addresses (and so their gossip pool).
func (c *Cluster) AddNodeIn(region, zone string, bootstrap bool) *Node {
	c.t.Helper()
	c.mu.Lock()
	k := 0
	for _, nd := range c.Nodes {
		if nd.Region == region {
			k++
		}
	}
	nd := &Node{ID: fmt.Sprintf("%s-%d", region, k), Dir: c.t.TempDir(), c: c, Region: region, Zone: zone}
	c.Nodes = append(c.Nodes, nd)
	c.mu.Unlock()
	nd.bootstrap = bootstrap
	seeds := c.seeds(nd)
	nd.start("127.0.0.1:0", "127.0.0.1:0", bootstrap)
	if !bootstrap {
		nd.join(seeds)
	}
	return nd
}

// InRegion returns the live nodes of region.
func (c *Cluster) InRegion(region string) []*Node {
	var out []*Node
	for _, nd := range c.Live() {
		if nd.Region == region {
			out = append(out, nd)
		}
	}
	return out
}

// VotersByRegion counts voters per region in the leader's configuration.
func (c *Cluster) VotersByRegion() map[string]int {
	c.t.Helper()
	leader := c.Leader()
	ms, err := leader.Members(context.Background())
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, m := range ms {
		if m.Role == cluster.RoleVoter {
			out[m.Region]++
		}
	}
	return out
}

// WaitVoters waits until the leader's voters per region equal want.
func (c *Cluster) WaitVoters(want map[string]int) {
	c.t.Helper()
	testwait.Eventually(c.t, WaitTimeout, fmt.Sprintf("voters by region %v", want), func() error {
		if got := c.VotersByRegion(); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("voters by region = %v", got)
		}
		return nil
	})
}

// Role returns id's role in the leader's configuration.
func (c *Cluster) Role(id string) cluster.Role {
	servers, err := c.Leader().Servers(context.Background())
	if err != nil {
		return cluster.RoleNone
	}
	for _, s := range servers {
		if string(s.ID) == id {
			if s.Suffrage.String() == "Voter" {
				return cluster.RoleVoter
			}
			return cluster.RoleNonvoter
		}
	}
	return cluster.RoleNone
}
