package node

import (
	"context"
	"fmt"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/transport"
)

var (
	memberRoles = map[cluster.Role]transport.MemberRole{
		cluster.RoleVoter:    transport.RoleVoter,
		cluster.RoleNonvoter: transport.RoleNonvoter,
		cluster.RoleNone:     transport.RoleNone,
	}
	// A Raft server gossip never reported (or gossip off) is not known to be
	// alive: SUSPECT tells clients to use it only as a last resort.
	memberStatuses = map[cluster.MemberStatus]transport.MemberStatus{
		cluster.StatusAlive:   transport.StatusAlive,
		cluster.StatusSuspect: transport.StatusSuspect,
		cluster.StatusDead:    transport.StatusDead,
		cluster.StatusLeft:    transport.StatusLeft,
		cluster.StatusUnknown: transport.StatusSuspect,
	}
)

// members adapts the cluster's membership view to the transport's. A
// failure is passed on as the cluster's error: transport answers any
// Membership failure with Unavailable.
func (n *Node) members(ctx context.Context) (transport.MembersView, error) {
	ms, err := n.cluster.Members(ctx)
	if err != nil {
		return transport.MembersView{}, fmt.Errorf("membership view: %w", err)
	}
	leader, _ := n.cluster.Leader()
	v := transport.MembersView{LeaderID: leader, ServedBy: n.cfg.NodeID, AppliedIndex: n.fsm.AppliedIndex()}
	for _, m := range ms {
		healthy, version := m.Healthy, m.BuildVersion
		if m.ID == n.cfg.NodeID {
			healthy = n.readyNow()       // our own view is fresher than gossip's
			version = n.cfg.BuildVersion // known even with gossip off
		}
		v.Members = append(v.Members, transport.Member{NodeID: m.ID, Region: m.Region, Zone: m.Zone,
			APIAddr: m.APIAddr, Role: memberRoles[m.Role], Leader: m.Leader, Status: memberStatuses[m.Status],
			Healthy: healthy, BuildVersion: version})
	}
	return v, nil
}
