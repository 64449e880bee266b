package cluster

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/fsm"
)

// raftFSM is the fsm as hashicorp/raft's state machine. The fsm knows
// nothing of raft, so that what reads it (the keystore) builds without
// raft; this adapter hands it each committed entry's index and bytes,
// streams its snapshots into raft's sinks, and counts restores so that
// tests and operators can tell a node caught up from a snapshot rather
// than from the log.
type raftFSM struct {
	fsm      *fsm.FSM
	restores atomic.Uint64
}

var _ raft.FSM = (*raftFSM)(nil)

// Apply gets command entries only: raft keeps its no-op and configuration
// entries to itself. The Result is what ApplyFuture.Response returns.
func (r *raftFSM) Apply(l *raft.Log) interface{} { return r.fsm.Apply(l.Index, l.Data) }

// Snapshot captures the fsm's current state (a pointer: O(1)).
func (r *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	return raftSnapshot{r.fsm.Snapshot()}, nil
}

// Restore replaces the fsm's state with a snapshot raft received or kept.
func (r *raftFSM) Restore(rc io.ReadCloser) error {
	r.restores.Add(1)
	return r.fsm.Restore(rc)
}

// raftSnapshot persists an fsm snapshot into a raft sink, closing the sink
// on success and cancelling it on failure, as raft's contract asks.
type raftSnapshot struct{ snap *fsm.Snapshot }

func (s raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot at index %d: close: %w", s.snap.Index(), err)
	}
	return nil
}

// Release has nothing to free: the captured state is garbage once unused.
func (raftSnapshot) Release() {}
