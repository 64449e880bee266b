package cluster

import "time"

// Timings are the Raft timeouts, grouped so a deployment sets them from
// one measurement.
type Timings struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
}

// WANTimings returns Raft timings for a cluster whose worst inter-region
// round trip is rtt (see DESIGN.md for the reasoning):
//
//   - heartbeat and election timeouts are max(400ms, 5 x rtt): 5x the RTT
//     so that one slow round trip (or a retransmit) never looks like a dead
//     leader, and never below the LAN default (itself well over 3x an
//     fsync p99, since raft persists before it acknowledges). Measured
//     (docs/BENCHMARKS.md): 10 x rtt with a 1 s floor put failover p99 at
//     4.6-5.2 s on a 50-100 ms WAN, past the 3 s target; 500 ms gave 2.4 s;
//   - the leader lease is half the heartbeat timeout: a partitioned leader
//     steps down within it, and raft requires lease <= heartbeat;
//   - commit timeout stays at raft's 50 ms: it only paces heartbeats that
//     carry the commit index when idle and does not need to scale.
//
// A leader dies -> followers notice after about HeartbeatTimeout and elect
// within ElectionTimeout to twice that, so failover takes 2-3 x
// HeartbeatTimeout: about 1.5 s at 100 ms RTT.
func WANTimings(rtt time.Duration) Timings {
	hb := max(400*time.Millisecond, 5*rtt)
	return Timings{
		HeartbeatTimeout:   hb,
		ElectionTimeout:    hb,
		LeaderLeaseTimeout: hb / 2,
		CommitTimeout:      50 * time.Millisecond,
	}
}

// Apply sets t on c.
func (t Timings) Apply(c *Config) {
	c.HeartbeatTimeout, c.ElectionTimeout = t.HeartbeatTimeout, t.ElectionTimeout
	c.LeaderLeaseTimeout, c.CommitTimeout = t.LeaderLeaseTimeout, t.CommitTimeout
}
