package cluster

import (
	"cmp"
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/cluster/clusterpb"
)

// readdress brings Raft's configuration and the members' registrations
// (REGISTER_NODE) up to date with the addresses live members advertise in
// gossip. A node restarted with new advertise addresses (a container
// given a new IP, whose advertised host name this node resolved again at
// start, or a changed --advertise-*-addr) has no --join to run; its fresh
// gossip metadata carries the new addresses, and the leader applies them
// as a join would: AddVoter/AddNonvoter on the known id updates its Raft
// address in one configuration change, and the registration is replaced.
// Gossip stays advisory: only the leader acts on it. The leader's own
// addresses are left to registerSelf.
func (n *Node) readdress(ctx context.Context) error {
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	peers := n.gossip.snapshot()
	for _, s := range servers {
		id := string(s.ID)
		pr, ok := peers[id]
		if id == n.cfg.NodeID || !ok || pr.status != StatusAlive || pr.meta.RaftAddr == "" {
			continue
		}
		m := pr.meta
		reg, registered := n.fsm.Node(id)
		moved := string(s.Address) != m.RaftAddr ||
			(registered && m.APIAddr != "" && reg.GetApiAddr() != m.APIAddr) ||
			(registered && m.ClusterAddr != "" && reg.GetClusterAddr() != m.ClusterAddr)
		if !moved {
			continue
		}
		req := &clusterpb.JoinRequest{NodeId: id, RaftAddr: m.RaftAddr,
			ApiAddr: cmp.Or(m.APIAddr, reg.GetApiAddr()), ClusterAddr: cmp.Or(m.ClusterAddr, reg.GetClusterAddr()),
			Region: cmp.Or(m.Region, reg.GetRegion()), Zone: cmp.Or(m.Zone, reg.GetZone()),
			Voter: s.Suffrage == raft.Voter}
		n.log.Info("member advertises new addresses: updating raft and its registration", "id", id,
			"raft_addr", m.RaftAddr, "old_raft_addr", string(s.Address), "api_addr", req.ApiAddr, "cluster_addr", req.ClusterAddr)
		if _, err := n.addMember(ctx, req); err != nil {
			return fmt.Errorf("update addresses of %s: %w", id, err)
		}
	}
	return nil
}
