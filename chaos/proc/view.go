package proc

import apiv1 "github.com/meridiankms/meridian/api/meridian/v1"

// membersView is the part of a node's Members answer the harness waits on.
type membersView struct {
	leader  string
	members map[string]*apiv1.Member
}

func viewOf(resp *apiv1.MembersResponse) membersView {
	v := membersView{leader: resp.GetLeaderId(), members: map[string]*apiv1.Member{}}
	for _, m := range resp.GetMembers() {
		v.members[m.GetNodeId()] = m
	}
	return v
}

// formed reports whether the view shows a leader, every node of ids
// alive, healthy and in the Raft configuration, and voters voters.
func (v membersView) formed(ids []string, voters int) bool {
	if v.leader == "" {
		return false
	}
	n := 0
	for _, id := range ids {
		m := v.members[id]
		if m == nil || !m.GetHealthy() || m.GetStatus() != apiv1.MemberStatus_MEMBER_STATUS_ALIVE {
			return false
		}
		switch m.GetRole() {
		case apiv1.MemberRole_MEMBER_ROLE_VOTER:
			n++
		case apiv1.MemberRole_MEMBER_ROLE_NONVOTER:
		default:
			return false
		}
	}
	return n == voters
}
