package cluster

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one node in the membership view: gossip state merged with the
// Raft configuration this node knows and the fsm's registrations.
type Member struct {
	ID, Region, Zone  string
	APIAddr, RaftAddr string
	// ClusterAddr is the member's cluster-plane address: its registered or
	// advertised one, else (a member that predates the cluster plane) its
	// APIAddr, which served the cluster plane then.
	ClusterAddr  string
	GossipAddr   string // "" when gossip never reported it
	BuildVersion string
	// Role is the node's suffrage in the Raft configuration (RoleNone:
	// known to gossip only, e.g. not yet added by autopilot).
	Role   Role
	Leader bool
	// Status is the gossip state; StatusUnknown for a Raft server gossip
	// has not reported (or when gossip is off).
	Status      MemberStatus
	StatusSince time.Time // zero when unknown
	// Healthy is the member's advertised health bit (false unless alive).
	Healthy bool
}

// Members returns the membership view, sorted by region then id.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	servers, err := n.Servers(ctx)
	if err != nil {
		return nil, err
	}
	_, leaderID := n.raft.LeaderWithID()
	byID := map[string]*Member{}
	get := func(id string) *Member {
		m, ok := byID[id]
		if !ok {
			m = &Member{ID: id, Status: StatusUnknown}
			byID[id] = m
		}
		return m
	}
	for _, s := range servers {
		m := get(string(s.ID))
		m.RaftAddr, m.Role = string(s.Address), roleOf(s.Suffrage)
		if reg, ok := n.fsm.Node(m.ID); ok {
			m.Region, m.Zone, m.APIAddr = reg.GetRegion(), reg.GetZone(), reg.GetApiAddr()
			m.ClusterAddr = clusterAddrOf(reg.GetClusterAddr(), reg.GetApiAddr())
		}
	}
	if n.gossip != nil {
		for id, p := range n.gossip.snapshot() {
			m := get(id)
			m.Region, m.Zone, m.APIAddr = p.meta.Region, p.meta.Zone, p.meta.APIAddr
			m.ClusterAddr = clusterAddrOf(p.meta.ClusterAddr, p.meta.APIAddr)
			m.BuildVersion, m.GossipAddr = p.meta.BuildVersion, p.addr
			if m.RaftAddr == "" {
				m.RaftAddr = p.meta.RaftAddr
			}
			m.Status, m.StatusSince = p.status, p.since
			m.Healthy = p.status == StatusAlive && p.meta.Healthy
		}
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		m.Leader = m.ID == string(leaderID)
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// clusterAddrOf is where a member's cluster plane is served: its cluster
// address, or for a member that registered or advertised none (built
// before the cluster plane had its own listener) its API address.
func clusterAddrOf(clusterAddr, apiAddr string) string {
	if clusterAddr != "" {
		return clusterAddr
	}
	return apiAddr
}

func roleOf(s raft.ServerSuffrage) Role {
	switch s {
	case raft.Voter:
		return RoleVoter
	case raft.Nonvoter:
		return RoleNonvoter
	default:
		return RoleNone
	}
}

// CountMembers counts members by region and status, for the membership
// metrics.
func CountMembers(ms []Member) map[string]map[MemberStatus]int {
	out := map[string]map[MemberStatus]int{}
	for _, m := range ms {
		if out[m.Region] == nil {
			out[m.Region] = map[MemberStatus]int{}
		}
		out[m.Region][m.Status]++
	}
	return out
}

// gossipLoop keeps this node's advertised metadata current (role from the
// Raft configuration, health from SetHealthy) and forgets peers gone from
// both gossip and Raft.
func (n *Node) gossipLoop(ctx context.Context) {
	g := n.gossip
	tick := time.NewTicker(n.roleCheckInterval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.changed:
			if err := g.ml.UpdateNode(n.cfg.ApplyTimeout); err != nil {
				g.log.Debug("re-advertise metadata", "error", err.Error())
			}
		case <-tick.C:
			n.refreshRole(ctx)
		}
	}
}

func (n *Node) roleCheckInterval() time.Duration {
	if iv := n.cfg.Autopilot.Interval; iv > 0 && iv < time.Second {
		return iv
	}
	return time.Second
}

// refreshRole advertises this node's suffrage and prunes dead peers.
func (n *Node) refreshRole(ctx context.Context) {
	cf := n.raft.GetConfiguration()
	if waitFuture(ctx, cf) != nil {
		return
	}
	inRaft := map[string]bool{}
	role := RoleNone
	for _, s := range cf.Configuration().Servers {
		inRaft[string(s.ID)] = true
		if string(s.ID) == n.cfg.NodeID {
			role = roleOf(s.Suffrage)
		}
	}
	n.gossip.setLocal(func(m *Meta) { m.Role = role })
	grace := n.cfg.Autopilot.DeadServerGrace
	for id, p := range n.gossip.snapshot() {
		if (p.status == StatusDead || p.status == StatusLeft) && !inRaft[id] && time.Since(p.since) > grace {
			n.gossip.forget(id)
		}
	}
}
