package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Stats is a point-in-time view of a node's Raft state, for metrics,
// health checks and tests.
type Stats struct {
	State             string // "Leader", "Follower", "Candidate", "Shutdown"
	Term              uint64
	LastIndex         uint64 // last log index stored
	CommitIndex       uint64
	AppliedIndex      uint64 // raft's applied index
	FSMAppliedIndex   uint64 // what the local fsm has applied (reads see this)
	LastSnapshotIndex uint64
	// SnapshotRestores counts fsm restores: at start-up from a local
	// snapshot and each snapshot installed from the leader.
	SnapshotRestores uint64
	LeaderID         string
	// LastContact is how long ago this node last heard from the leader: 0 on
	// the leader, -1 if never. The staleness bound of DESIGN.md builds on it.
	LastContact time.Duration
	NumPeers    int // other servers in the Raft configuration
	// ApplyLag is CommitIndex - FSMAppliedIndex: committed entries this
	// node's reads do not see yet.
	ApplyLag uint64
	// LeaderChanges counts the leader changes this node has observed
	// since it started (a new leader id, not a re-election of the same).
	LeaderChanges uint64
}

// Stats returns the node's current Raft statistics.
func (n *Node) Stats() Stats {
	r := n.raft
	_, leaderID := r.LeaderWithID()
	s := Stats{
		State:            r.State().String(),
		Term:             r.CurrentTerm(),
		LastIndex:        r.LastIndex(),
		CommitIndex:      r.CommitIndex(),
		AppliedIndex:     r.AppliedIndex(),
		FSMAppliedIndex:  n.fsm.AppliedIndex(),
		SnapshotRestores: n.raftFSM.restores.Load(),
		LeaderID:         string(leaderID),
	}
	if s.CommitIndex > s.FSMAppliedIndex {
		s.ApplyLag = s.CommitIndex - s.FSMAppliedIndex
	}
	s.LeaderChanges = n.leaderChanges.Load()
	if v, err := strconv.ParseUint(r.Stats()["last_snapshot_index"], 10, 64); err == nil {
		s.LastSnapshotIndex = v
	}
	s.LastContact = n.LastContact()
	if cf := r.GetConfiguration(); cf.Error() == nil {
		for _, srv := range cf.Configuration().Servers {
			if string(srv.ID) != n.cfg.NodeID {
				s.NumPeers++
			}
		}
	}
	return s
}

// LastContact is how long ago this node last heard from the leader: 0 on
// the leader, -1 if never. It is cheap (no configuration read), so the
// keystore can check a key's staleness bound on every data-plane call.
func (n *Node) LastContact() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	if last := n.raft.LastContact(); !last.IsZero() {
		return time.Since(last)
	}
	return -1
}

// IsLeader reports whether this node is the Raft leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and cluster-plane address (where writes
// and joins are forwarded) as this node knows them; empty strings when no
// leader is known, and an empty clusterAddr when the leader has not
// registered yet.
func (n *Node) Leader() (id, clusterAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	if string(lid) == n.cfg.NodeID {
		return n.cfg.NodeID, n.cfg.ClusterAddr
	}
	if node, ok := n.fsm.Node(string(lid)); ok {
		return string(lid), clusterAddrOf(node.GetClusterAddr(), node.GetApiAddr())
	}
	return string(lid), ""
}

// WaitForLeader returns once a leader is known, or ErrNoLeader wrapped with
// ctx's error.
func (n *Node) WaitForLeader(ctx context.Context) error {
	b := newBackoff(5*time.Millisecond, 100*time.Millisecond)
	for {
		if n.closed.Load() {
			return ErrShutdown
		}
		if _, id := n.raft.LeaderWithID(); id != "" {
			return nil
		}
		if err := b.wait(ctx); err != nil {
			return fmt.Errorf("wait for leader: %w: %w", ErrNoLeader, err)
		}
	}
}

// Servers returns the latest Raft configuration as this node knows it.
func (n *Node) Servers(ctx context.Context) ([]raft.Server, error) {
	if n.closed.Load() {
		return nil, ErrShutdown
	}
	f := n.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return nil, fmt.Errorf("get raft configuration: %w", mapRaftErr(err))
	}
	conf := f.Configuration()
	return conf.Clone().Servers, nil
}

// RemoveServer removes id from the Raft configuration and deregisters it
// from the fsm. Only the leader can: a follower returns ErrNotLeader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if n.closed.Load() {
		return ErrShutdown
	}
	if !n.IsLeader() {
		return fmt.Errorf("remove server %s: %w", id, ErrNotLeader)
	}
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx))); err != nil {
		return fmt.Errorf("remove server %s: %w", id, mapRaftErr(err))
	}
	if _, ok := n.fsm.Node(id); !ok {
		return nil
	}
	cmd, err := fsm.NewCommand(fsmpb.CommandType_COMMAND_TYPE_DEREGISTER_NODE, &fsmpb.Node{Id: id}, "", time.Now())
	if err != nil {
		return fmt.Errorf("deregister node %s: %w", id, err)
	}
	if _, err := n.Apply(ctx, cmd); err != nil {
		return fmt.Errorf("deregister node %s: %w", id, err)
	}
	return nil
}

// Snapshot takes a user snapshot now (and compacts the log down to
// TrailingLogs). Nothing new since the last snapshot is not an error.
func (n *Node) Snapshot(ctx context.Context) error {
	if n.closed.Load() {
		return ErrShutdown
	}
	err := waitFuture(ctx, n.raft.Snapshot())
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", mapRaftErr(err))
	}
	return nil
}

// timeout converts ctx's deadline into a raft timeout, defaulting to
// ApplyTimeout.
func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return n.cfg.ApplyTimeout
}

// waitFuture waits for f, or for ctx to end first. raft resolves every
// future eventually (on shutdown at the latest), so the helper goroutine
// never outlives the node.
func waitFuture(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mapRaftErr turns raft's shutdown error into ErrShutdown.
func mapRaftErr(err error) error {
	if errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("%w: %w", ErrShutdown, err)
	}
	return err
}

// backoff is a bounded exponential wait.
type backoff struct{ cur, max time.Duration }

func newBackoff(min, max time.Duration) *backoff { return &backoff{cur: min, max: max} }

func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(b.cur*2, b.max)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
