package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Config configures one cluster node. Build it from DefaultConfig and set
// NodeID, DataDir, RaftBindAddr and APIAddr.
type Config struct {
	// NodeID is this node's stable identity in Raft and in the fsm's member
	// list. It must survive restarts (it is what makes a restart a restart).
	NodeID string
	// Region and Zone label the node; advertised in its registration.
	Region string
	Zone   string

	// DataDir holds raft/raft.db (log and stable store) and raft/snapshots.
	DataDir string

	// RaftBindAddr is the TCP address the Raft transport listens on.
	// "127.0.0.1:0" picks a free port; the advertised address is then the
	// listener's real address (see Node.RaftAddr).
	RaftBindAddr string
	// RaftAdvertiseAddr, if set, is advertised instead of the listener's
	// address (needed when binding 0.0.0.0 or behind NAT).
	RaftAdvertiseAddr string
	// StreamLayer, if set, replaces the TCP listener/dialer of the Raft
	// transport (RaftBindAddr is then ignored). It is the seam for TLS and
	// for simulated WAN latency and partitions in tests.
	StreamLayer raft.StreamLayer

	// APIAddr is this node's gRPC API address, where the Cluster service is
	// served; followers forward writes and joins to the leader's APIAddr.
	APIAddr string

	// Bootstrap makes this node form a single-node cluster when its data dir
	// holds no Raft state. Ignored on restart.
	Bootstrap bool
	// NonVoter makes Join ask to be added as a non-voter.
	NonVoter bool

	// Raft timings. The defaults suit a LAN (they are raft's own defaults,
	// the ones Consul runs with raft_multiplier=1): a dead leader is noticed
	// after about HeartbeatTimeout and replaced within ElectionTimeout to
	// twice that. A WAN deployment scales them all by its round-trip time.
	// LeaderLeaseTimeout must not exceed HeartbeatTimeout; it bounds how long
	// a partitioned leader keeps believing it leads.
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 50ms

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one (checked every SnapshotInterval, jittered).
	SnapshotThreshold uint64        // default 8192
	SnapshotInterval  time.Duration // default 2m
	// TrailingLogs is how many entries are kept after a snapshot so that a
	// slightly lagging follower catches up from the log, not a snapshot.
	TrailingLogs uint64 // default 10240
	// RetainSnapshots is how many snapshots are kept on disk.
	RetainSnapshots int // default 2

	// ApplyTimeout bounds Apply when the caller's context has no deadline.
	ApplyTimeout time.Duration // default 10s

	// Logger receives the node's logs and, through an hclog adapter, raft's.
	// Nil discards.
	Logger *slog.Logger

	// DialOptions are used for node-to-node gRPC (forwarding, joins).
	// Default: insecure credentials (TLS arrives with the security issue).
	DialOptions []grpc.DialOption
}

// DefaultConfig returns a Config with LAN timings and insecure dialing.
func DefaultConfig() Config {
	return Config{
		RaftBindAddr:       "127.0.0.1:0",
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		RetainSnapshots:    2,
		ApplyTimeout:       10 * time.Second,
		DialOptions:        []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
	}
}

// Validate reports the first problem with c, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.NodeID == "":
		return bad("node id is empty")
	case c.DataDir == "":
		return bad("data dir is empty")
	case c.RaftBindAddr == "" && c.StreamLayer == nil:
		return bad("raft bind address is empty")
	case c.APIAddr == "":
		return bad("api address is empty")
	case c.ApplyTimeout <= 0:
		return bad("apply timeout %v is not positive", c.ApplyTimeout)
	case len(c.DialOptions) == 0:
		return bad("dial options are empty (need at least transport credentials)")
	case c.RetainSnapshots < 1:
		return bad("retain snapshots %d is below 1", c.RetainSnapshots)
	}
	if err := raft.ValidateConfig(c.raftConfig()); err != nil {
		return bad("raft: %v", err)
	}
	return nil
}

// raftConfig maps c onto raft's Config; the logger and notify channel are
// set by New.
func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// A removed node must stay up: it may be re-added (e.g. with a new
	// address), and only the operator stops a process.
	rc.ShutdownOnRemove = false
	return rc
}
