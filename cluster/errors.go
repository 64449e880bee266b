package cluster

import (
	"errors"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/fsm"
)

var (
	// ErrNoLeader means no leader was known (or reachable) before the deadline:
	// what a node in a minority partition, or a cluster mid-election, gives.
	// It is fsm.ErrNoLeader, re-exported: the keystore matches it with
	// errors.Is without importing this package.
	ErrNoLeader = fsm.ErrNoLeader

	// ErrShutdown means the node was closed.
	ErrShutdown = errors.New("cluster node is shut down")

	// ErrNotLeader is raft's sentinel, re-exported so that errors.Is matches
	// across layers without importing raft. Operations that only the leader
	// may run (RemoveServer) return it on a follower.
	ErrNotLeader = raft.ErrNotLeader

	// ErrInvalidCommand means a command could not be encoded or decoded, or
	// fsm.CheckCommand refused it (the error then wraps fsm.ErrBadCommand
	// too); it is never proposed, because an entry the fsm cannot apply
	// stops every node.
	ErrInvalidCommand = errors.New("invalid fsm command")

	// ErrInvalidConfig is returned by Config.Validate.
	ErrInvalidConfig = errors.New("invalid cluster config")

	// ErrEnrolmentUnavailable refuses a join that asked for the domain keys
	// when the leader has no Config.Enrolment: nothing can hand them over,
	// so the joiner stops retrying. The node is not added.
	ErrEnrolmentUnavailable = errors.New("this cluster's members cannot enrol HSMs: no domain-key exporter configured")

	// ErrInvalidTransportKey refuses a join whose transport public key is
	// unacceptable (too large here, or refused by the exporter). Permanent:
	// the joiner stops retrying. The node is not added.
	ErrInvalidTransportKey = errors.New("invalid transport public key")

	// ErrJoinIdentity refuses a join whose caller is not the node it asks
	// to add: the verified certificate of the connection names another
	// node (or the forwarder is not a member). Permanent: the joiner stops
	// retrying. The node is not added.
	ErrJoinIdentity = errors.New("the join does not come from the node it names")

	// ErrNoDomainKeyBundle means a join that asked for the domain keys was
	// accepted without them: the leader runs a build that predates
	// enrolment. The node IS a member then, without the domain keys; join
	// again once that leader is upgraded (joins are idempotent).
	ErrNoDomainKeyBundle = errors.New("leader accepted the join but sent no domain-key bundle (does it predate enrolment?)")
)
