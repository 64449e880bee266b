package cluster

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// stuckFSM blocks in Apply until release closes: a wait inside Raft's
// goroutines that shutdown does not end, which no real part can be made
// to produce on demand.
type stuckFSM struct {
	entered chan struct{}
	release chan struct{}
}

func (f *stuckFSM) Apply(*raft.Log) interface{} {
	close(f.entered)
	<-f.release
	return nil
}
func (f *stuckFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, io.EOF }
func (f *stuckFSM) Restore(io.ReadCloser) error         { return nil }

// TestCloseBoundsAStuckRaftShutdown: when one of Raft's goroutines does
// not return, Close's wait ends with an error naming the node and the
// stacks in the log, instead of hanging the process (a test run once hung
// 38 minutes in cleanup this way).
func TestCloseBoundsAStuckRaftShutdown(t *testing.T) {
	cfg := raft.DefaultConfig()
	cfg.LocalID = "n1"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 50*time.Millisecond, 5*time.Millisecond
	cfg.Logger = newHclog(slog.New(slog.NewTextHandler(io.Discard, nil)), "raft", nil)
	_, trans := raft.NewInmemTransport("n1")
	store := raft.NewInmemStore()
	fsm := &stuckFSM{entered: make(chan struct{}), release: make(chan struct{})}
	r, err := raft.NewRaft(cfg, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: trans.LocalAddr()}}}).Error(); err != nil {
		t.Fatal(err)
	}
	// Let Raft finish shutting down once the test is over.
	defer close(fsm.release)
	// Single voter: it elects itself and applies the command, where the
	// FSM sticks.
	deadline := time.Now().Add(time.Minute)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("the single voter did not elect itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Apply([]byte("x"), 0)
	select {
	case <-fsm.entered:
	case <-time.After(time.Minute):
		t.Fatal("the FSM never got the command")
	}

	var logs bytes.Buffer
	n := &Node{cfg: Config{NodeID: "n1"}, raft: r, log: slog.New(slog.NewTextHandler(&logs, nil))}
	err = n.shutdownRaft(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "raft did not shut down") || !strings.Contains(err.Error(), "n1") {
		t.Fatalf("shutdownRaft with a stuck FSM: %v, want an error naming the node", err)
	}
	if !strings.Contains(logs.String(), "stuckFSM") {
		t.Errorf("the log lacks the stuck goroutine's stack:\n%.2000s", logs.String())
	}
}

// TestRaftTransportDoesNotPipeline: the transport refuses pipelining, so
// raft replicates with plain AppendEntries and never enters the pipeline
// whose stopped decoder blocks sends forever (see openTransport).
func TestRaftTransportDoesNotPipeline(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.RaftBindAddr = "n1", t.TempDir(), "127.0.0.1:0"
	n := &Node{cfg: cfg}
	if err := n.openTransport(); err != nil {
		t.Fatal(err)
	}
	defer n.trans.Close()
	if _, err := n.trans.AppendEntriesPipeline("n2", "127.0.0.1:1"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline = %v, want ErrPipelineReplicationNotSupported", err)
	}
}
