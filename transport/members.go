package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Membership is this node's view of the cluster, answered from its gossip
// and Raft state without a network hop. It is declared here, by its
// consumer, so transport needs nothing of the cluster package; the wiring
// adapts the cluster node to it. Any error means the view cannot be had
// here now: callers see Unavailable (errMembership in the error table), or
// the context's own error when the call ran out.
type Membership interface {
	Members(ctx context.Context) (MembersView, error)
}

// errMembership marks a failed membership view (the node shutting down,
// raft not answering): the error table maps it to Unavailable, so the
// caller asks another node.
var errMembership = errors.New("membership view unavailable")

// membersView asks m for its view; a failure wraps errMembership.
func membersView(ctx context.Context, m Membership) (MembersView, error) {
	v, err := m.Members(ctx)
	if err != nil {
		return MembersView{}, fmt.Errorf("%w: %w", errMembership, err)
	}
	return v, nil
}

// MembershipFunc adapts a function to Membership.
type MembershipFunc func(ctx context.Context) (MembersView, error)

// Members calls f.
func (f MembershipFunc) Members(ctx context.Context) (MembersView, error) { return f(ctx) }

// MembersView is one node's answer to "who is in the cluster".
type MembersView struct {
	Members  []Member
	LeaderID string // "" while no leader is known
	// ServedBy is the id of the node that built the view, and AppliedIndex
	// the Raft index its fsm has applied: a client compares it with its
	// newest consistency token to judge the node's freshness.
	ServedBy     string
	AppliedIndex uint64
}

// Member describes one node as this node sees it.
type Member struct {
	NodeID       string
	Region       string
	Zone         string
	APIAddr      string // host:port of the node's KeyManagement API
	Role         MemberRole
	Leader       bool
	Status       MemberStatus
	Healthy      bool // the node reports itself ready for crypto
	BuildVersion string
}

// MemberRole is a node's place in the Raft configuration, spelled as the
// api enum without its prefix (as keystore enums are). "" means unknown.
type MemberRole string

// The roles a member can have.
const (
	RoleVoter    MemberRole = "VOTER"
	RoleNonvoter MemberRole = "NONVOTER"
	// RoleNone: known by gossip, not (yet) in the Raft configuration.
	RoleNone MemberRole = "NONE"
)

// MemberStatus is a node's gossip liveness, spelled as the api enum
// without its prefix. "" means unknown.
type MemberStatus string

// The liveness states gossip reports.
const (
	StatusAlive   MemberStatus = "ALIVE"
	StatusSuspect MemberStatus = "SUSPECT"
	StatusDead    MemberStatus = "DEAD"
	StatusLeft    MemberStatus = "LEFT"
)

// memberStatuses lists every status, in the order metrics expose them.
var memberStatuses = []MemberStatus{StatusAlive, StatusSuspect, StatusDead, StatusLeft}

var memberRoles = newEnumTable("role",
	enumRow[apiv1.MemberRole, MemberRole]{apiv1.MemberRole_MEMBER_ROLE_VOTER, RoleVoter},
	enumRow[apiv1.MemberRole, MemberRole]{apiv1.MemberRole_MEMBER_ROLE_NONVOTER, RoleNonvoter},
	enumRow[apiv1.MemberRole, MemberRole]{apiv1.MemberRole_MEMBER_ROLE_NONE, RoleNone},
)

var memberStatusTable = newEnumTable("status",
	enumRow[apiv1.MemberStatus, MemberStatus]{apiv1.MemberStatus_MEMBER_STATUS_ALIVE, StatusAlive},
	enumRow[apiv1.MemberStatus, MemberStatus]{apiv1.MemberStatus_MEMBER_STATUS_SUSPECT, StatusSuspect},
	enumRow[apiv1.MemberStatus, MemberStatus]{apiv1.MemberStatus_MEMBER_STATUS_DEAD, StatusDead},
	enumRow[apiv1.MemberStatus, MemberStatus]{apiv1.MemberStatus_MEMBER_STATUS_LEFT, StatusLeft},
)

// WithMembership serves the Members RPC from m. Without it Members answers
// Unimplemented: a server with no cluster behind it has no view to give.
func WithMembership(m Membership) Option {
	return func(s *Server) { s.members = m }
}

// errNoMembership is what Members answers on a server built without
// WithMembership. Unimplemented, because to the caller this server lacks
// the RPC, and the client's discovery treats it like a server too old to
// have it.
func errNoMembership() *statusError {
	return newStatusError(codes.Unimplemented,
		"Members is not served here: this server was started without a cluster membership view",
		"UnsupportedOperationException")
}

func (s *service) Members(ctx context.Context, _ *apiv1.MembersRequest) (*apiv1.MembersResponse, error) {
	if s.members == nil {
		return nil, errNoMembership()
	}
	v, err := membersView(ctx, s.members)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(membersOut(&c, v), &c)
}

func membersOut(c *conv, v MembersView) *apiv1.MembersResponse {
	ms := make([]*apiv1.Member, len(v.Members))
	for i, m := range v.Members {
		ms[i] = &apiv1.Member{
			NodeId:       m.NodeID,
			Region:       m.Region,
			Zone:         m.Zone,
			ApiAddr:      m.APIAddr,
			Role:         memberRoles.out(c, m.Role),
			Leader:       m.Leader,
			Status:       memberStatusTable.out(c, m.Status),
			Healthy:      m.Healthy,
			BuildVersion: m.BuildVersion,
		}
	}
	return &apiv1.MembersResponse{
		Members:      ms,
		LeaderId:     v.LeaderID,
		ServedBy:     v.ServedBy,
		AppliedIndex: v.AppliedIndex,
	}
}
