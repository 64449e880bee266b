package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/cluster/autopilot"
	"github.com/meridiankms/meridian/cluster/clusterpb"
)

// pilot is the leader-side state autopilot keeps between rounds.
type pilot struct {
	unknownSince map[string]time.Time // Raft servers gossip has not reported
}

// autopilotLoop reconciles Raft with gossip every Interval while leader.
func (n *Node) autopilotLoop(ctx context.Context) {
	p := &pilot{unknownSince: map[string]time.Time{}}
	tick := time.NewTicker(n.cfg.Autopilot.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !n.IsLeader() {
			clear(p.unknownSince) // a new term starts a new view
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, max(n.cfg.Autopilot.Interval, time.Second)*2)
		if err := n.reconcile(rctx, p); err != nil && ctx.Err() == nil {
			n.log.Warn("autopilot round failed", "error", err.Error())
		}
		cancel()
	}
}

func (n *Node) autopilotConfig() autopilot.Config {
	a := n.cfg.Autopilot
	return autopilot.Config{
		TargetVoters: a.TargetVoters, MaxLagEntries: a.MaxLagEntries,
		StabilizationTime: a.StabilizationTime, DeadServerGrace: a.DeadServerGrace,
		PreferredLeaderRegion: a.PreferredLeaderRegion, TransferHysteresis: a.TransferHysteresis,
	}
}

// reconcile runs one round: snapshot, decide, apply in order.
func (n *Node) reconcile(ctx context.Context, p *pilot) error {
	if err := n.readdress(ctx); err != nil {
		return err
	}
	st, addrs, err := n.autopilotState(ctx, p)
	if err != nil {
		return err
	}
	for _, a := range autopilot.Decide(n.autopilotConfig(), st) {
		n.log.Info("autopilot", "action", a.Kind.String(), "id", a.ID, "reason", a.Reason)
		if err := n.applyAction(ctx, a, addrs[a.ID]); err != nil {
			return fmt.Errorf("%s %s: %w", a.Kind, a.ID, err)
		}
	}
	return nil
}

// target is what applyAction needs to know about a server.
type target struct{ raftAddr, apiAddr, clusterAddr, region, zone string }

// statusAddr is where the server's cluster plane answers Status.
func (t target) statusAddr() string { return clusterAddrOf(t.clusterAddr, t.apiAddr) }

func (n *Node) applyAction(ctx context.Context, a autopilot.Action, t target) error {
	id, addr := raft.ServerID(a.ID), raft.ServerAddress(t.raftAddr)
	switch a.Kind {
	case autopilot.AddNonvoter:
		_, err := n.addMember(ctx, &clusterpb.JoinRequest{NodeId: a.ID, RaftAddr: t.raftAddr,
			ApiAddr: t.apiAddr, ClusterAddr: t.clusterAddr, Region: t.region, Zone: t.zone})
		return err
	case autopilot.Promote:
		return waitFuture(ctx, n.raft.AddVoter(id, addr, 0, n.timeout(ctx)))
	case autopilot.Demote:
		return waitFuture(ctx, n.raft.DemoteVoter(id, 0, n.timeout(ctx)))
	case autopilot.Remove:
		return n.RemoveServer(ctx, a.ID)
	case autopilot.TransferLeadership:
		n.leaderSince.Store(time.Now().UnixNano()) // hysteresis for the next attempt too
		return waitFuture(ctx, n.raft.LeadershipTransferToServer(id, addr))
	}
	return fmt.Errorf("unknown autopilot action %d", a.Kind)
}

// autopilotState gathers the snapshot Decide works on: the Raft
// configuration, the gossip table and a status poll of every server.
func (n *Node) autopilotState(ctx context.Context, p *pilot) (autopilot.State, map[string]target, error) {
	now := time.Now()
	st := autopilot.State{Now: now, LeaderLastIndex: n.raft.LastIndex(),
		LeaderSince: time.Unix(0, n.leaderSince.Load())}
	servers, err := n.Servers(ctx)
	if err != nil {
		return st, nil, err
	}
	peers := n.gossip.snapshot()
	addrs := map[string]target{}
	inRaft := map[string]bool{}
	for _, s := range servers {
		id := string(s.ID)
		inRaft[id] = true
		as := autopilot.Server{ID: id, Suffrage: autopilot.Nonvoter, IsLeader: id == n.cfg.NodeID}
		if s.Suffrage == raft.Voter {
			as.Suffrage = autopilot.Voter
		}
		t := target{raftAddr: string(s.Address)}
		if reg, ok := n.fsm.Node(id); ok {
			as.Region, as.Zone, t.apiAddr = reg.GetRegion(), reg.GetZone(), reg.GetApiAddr()
			t.clusterAddr = reg.GetClusterAddr()
		}
		if pr, ok := peers[id]; ok {
			as.Region, as.Zone, as.NoVote = pr.meta.Region, pr.meta.Zone, pr.meta.NoVote
			as.Status, as.StatusSince, as.AliveSince = autopilot.Status(pr.status), pr.since, pr.aliveSince
			if t.apiAddr == "" {
				t.apiAddr = pr.meta.APIAddr
			}
			if t.clusterAddr == "" {
				t.clusterAddr = pr.meta.ClusterAddr
			}
			delete(p.unknownSince, id)
		} else {
			if _, ok := p.unknownSince[id]; !ok {
				p.unknownSince[id] = now
			}
			as.Status, as.StatusSince = autopilot.Unknown, p.unknownSince[id]
		}
		addrs[id] = t
		st.Servers = append(st.Servers, as)
	}
	for id := range p.unknownSince {
		if !inRaft[id] {
			delete(p.unknownSince, id)
		}
	}
	for id, pr := range peers {
		if inRaft[id] || pr.status != StatusAlive || pr.meta.RaftAddr == "" {
			continue
		}
		st.Servers = append(st.Servers, autopilot.Server{ID: id, Region: pr.meta.Region, Zone: pr.meta.Zone,
			Suffrage: autopilot.None, Status: autopilot.Alive, StatusSince: pr.since, AliveSince: pr.aliveSince})
		addrs[id] = target{raftAddr: pr.meta.RaftAddr, apiAddr: pr.meta.APIAddr, clusterAddr: pr.meta.ClusterAddr,
			region: pr.meta.Region, zone: pr.meta.Zone}
	}
	n.pollStatus(ctx, st.Servers, addrs)
	return st, addrs, nil
}

// pollStatus asks every Raft server for its progress, in parallel; a
// server that does not answer within the round is not Reachable.
func (n *Node) pollStatus(ctx context.Context, servers []autopilot.Server, addrs map[string]target) {
	pctx, cancel := context.WithTimeout(ctx, max(n.cfg.Autopilot.Interval, 500*time.Millisecond))
	defer cancel()
	var wg sync.WaitGroup
	for i := range servers {
		s := &servers[i]
		switch {
		case s.IsLeader:
			s.Reachable, s.LastIndex = true, n.raft.LastIndex()
			continue
		case s.Suffrage == autopilot.None || addrs[s.ID].statusAddr() == "":
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := n.pool.get(addrs[s.ID].statusAddr())
			if err != nil {
				return
			}
			resp, err := clusterpb.NewClusterClient(conn).Status(pctx, &clusterpb.StatusRequest{})
			if err != nil || resp.GetNodeId() != s.ID {
				return
			}
			s.Reachable, s.LastIndex = true, resp.GetLastIndex()
		}()
	}
	wg.Wait()
}
