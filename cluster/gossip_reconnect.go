package cluster

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlist never contacts a member again once it has declared it DEAD,
// except to gossip at it for GossipToTheDeadTime (15 s LAN, 60 s WAN). A
// partition longer than that would leave both sides dead to each other
// for good after it heals. So, as Serf does, each node periodically tries
// to rejoin one random DEAD member: the push/pull exchange tells each side
// that the other declared it dead, each refutes with a new incarnation,
// and the next exchange (or gossip) carries that back. Members that LEFT
// are not retried, nor peers forgotten once gone from Raft (a removed node
// still reconnects from its side, since its stale view keeps us).

// reconnectInterval is five probe intervals: 500 ms with the LAN profile,
// 25 s with the WAN one (Serf uses 30 s).
func reconnectInterval(mc *memberlist.Config) time.Duration {
	return 5 * mc.ProbeInterval
}

// reconnectLoop runs until ctx ends. A join across a partition blocks for
// memberlist's TCP timeout with no way to cancel it, so an attempt runs
// in its own goroutine and the loop stops waiting for it on ctx's end;
// the attempt then ends by itself (at once with a transport that ends its
// dials on Shutdown, as netsim's does).
func (n *Node) reconnectLoop(ctx context.Context) {
	g := n.gossip
	tick := time.NewTicker(g.reconnectEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id, addr := g.pickDead(n.cfg.NodeID)
		if addr == "" {
			continue
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := g.ml.Join([]string{addr}); err != nil {
				g.log.Debug("reconnect to dead member", "id", id, "addr", addr, "error", err.Error())
				return
			}
			g.log.Info("reconnected to dead member", "id", id, "addr", addr)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// pickDead returns a random DEAD member other than self ("" if none).
func (g *gossip) pickDead(self string) (id, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := 0
	for pid, p := range g.peers {
		if pid == self || p.status != StatusDead || p.addr == "" {
			continue
		}
		k++
		if rand.IntN(k) == 0 { // reservoir sampling: each with chance 1/k
			id, addr = pid, p.addr
		}
	}
	return id, addr
}
