package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc"

	"github.com/meridiankms/meridian/fsm"
)

const (
	// logCacheSize keeps the newest entries in memory so replication to a
	// follower that is slightly behind does not read bolt.
	logCacheSize = 512
	// transportMaxPool and transportTimeout are raft's usual TCP settings.
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
)

// Node is one member of a Meridian cluster: Raft, its stores and transport,
// the local fsm replica, and forwarding of writes to the leader.
type Node struct {
	cfg      Config
	log      *slog.Logger
	fsm      *fsm.FSM
	raftFSM  *raftFSM
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	store    *raftboltdb.BoltStore
	raftAddr string

	pool *connPool

	gossip *gossip // nil when gossip is off
	// leaderSince is when this node last became leader (or last asked for
	// a leadership transfer), in Unix nanoseconds: autopilot's hysteresis.
	leaderSince atomic.Int64
	// leaderChanges counts leader changes this node observed.
	leaderChanges atomic.Uint64
	// leaders holds the latest leader change (leader.go).
	leaders leaderLog
	// closing is set by BeginClose and Close: peer failures are expected.
	closing atomic.Bool

	stop     context.CancelFunc // stops background goroutines
	wg       sync.WaitGroup
	closed   atomic.Bool
	closeMu  sync.Mutex
	closeErr error
}

// New opens (or creates) the node's Raft state under cfg.DataDir and starts
// Raft with f as its state machine. With cfg.Bootstrap and no existing state
// it forms a single-node cluster; otherwise it resumes, or waits to be
// joined. ctx bounds only the start-up.
func New(ctx context.Context, cfg Config, f *fsm.FSM) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("%w: nil fsm", ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", cfg.NodeID, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:     cfg,
		log:     logger.With("component", "cluster"),
		fsm:     f,
		raftFSM: &raftFSM{fsm: f},
		pool:    newConnPool(cfg.DialOptions),
	}
	if err := n.open(); err != nil {
		n.closeResources()
		return nil, fmt.Errorf("start node %s: %w", cfg.NodeID, err)
	}
	return n, nil
}

// open builds the stores, transport and raft; on error the caller releases
// whatever was opened.
func (n *Node) open() error {
	cfg := n.cfg
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("create raft dir: %w", err)
	}
	path := filepath.Join(raftDir, "raft.db")
	// bolt locks its file for as long as it is open; without a timeout a
	// second node on the same data dir (or a Close that left a stuck Raft
	// holding it) would wait forever in silence.
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: boltLockWait}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("open raft bolt store %s: still locked after %v: is another meridian node running on data dir %s?",
			path, boltLockWait, cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("open raft bolt store %s: %w", path, err)
	}
	n.store = store
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return fmt.Errorf("create log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.RetainSnapshots, newHclog(cfg.Logger, "raft-snapshot", nil))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := n.openTransport(); err != nil {
		return err
	}
	// Gossip before Raft: raft's log filter and the leader watch read the
	// peer table (which peers are leaving) from raft's goroutines.
	if cfg.gossipOn() {
		if err := n.startGossip(); err != nil {
			return err
		}
	}

	rc := cfg.raftConfig()
	rc.Logger = newHclog(cfg.Logger, "raft", n.quietRaft)
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fmt.Errorf("check existing raft state: %w", err)
	}
	if cfg.Bootstrap && !existing {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: raft.ServerAddress(n.raftAddr),
		}}}
		if err := raft.BootstrapCluster(rc, logs, store, snaps, n.trans, conf); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster", "raft_addr", n.raftAddr)
	}
	r, err := raft.NewRaft(rc, n.raftFSM, logs, store, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	bg, stop := context.WithCancel(context.Background())
	n.stop = stop
	n.goBackground(func() { n.watchLeadership(bg, notify) })
	n.startLeaderWatch(bg, existing)
	if cfg.gossipOn() {
		n.goBackground(func() { n.gossipLoop(bg) })
		n.goBackground(func() { n.reconnectLoop(bg) })
		if len(cfg.Gossip.Seeds) > 0 {
			n.goBackground(func() {
				if err := n.JoinGossip(bg, cfg.Gossip.Seeds); err != nil && bg.Err() == nil {
					n.log.Warn("gossip seeds unreachable", "error", err.Error())
				}
			})
		}
		if cfg.autopilotOn() {
			n.goBackground(func() { n.autopilotLoop(bg) })
		}
	}
	n.log.Info("node started", "raft_addr", n.raftAddr, "cluster_addr", cfg.ClusterAddr, "api_addr", cfg.APIAddr, "resumed", existing)
	return nil
}

func (n *Node) goBackground(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) openTransport() error {
	tc := &raft.NetworkTransportConfig{
		Logger:  newHclog(n.cfg.Logger, "raft-net", n.quietRaft),
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		// No pipelining. With raft's default (2 in flight) the pipeline's
		// channels are unbuffered, and once its decoder stops (a follower
		// answered a stale term or a log mismatch, as a restarted node
		// does) the next two sends block forever: replication to that
		// follower stalls, the goroutine outlives leadership and Shutdown
		// waits on it (seen under load: a 38-minute hang, then 30 s
		// bounded waits with that stack). Synchronous AppendEntries still
		// batch every pending entry; raft's own analysis (PR 541) found
		// pipelining of little benefit.
		MaxRPCsInFlight: 1,
	}
	if n.cfg.StreamLayer != nil || n.cfg.RaftTLS.on() {
		stream := n.cfg.StreamLayer
		if stream == nil {
			tcp, err := newTCPStreamLayer(n.cfg.RaftBindAddr, n.cfg.RaftAdvertiseAddr)
			if err != nil {
				return err
			}
			stream = tcp
		}
		if n.cfg.RaftTLS.on() {
			stream = newTLSStreamLayer(stream, n.cfg.RaftTLS, n.log.With("component", "raft-tls"))
		}
		tc.Stream = stream
		n.trans = raft.NewNetworkTransportWithConfig(tc)
		n.raftAddr = string(n.trans.LocalAddr())
		return nil
	}
	var advertise net.Addr
	if n.cfg.RaftAdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertiseAddr)
		if err != nil {
			return fmt.Errorf("resolve raft advertise address %q: %w", n.cfg.RaftAdvertiseAddr, err)
		}
		advertise = a
	}
	trans, err := raft.NewTCPTransportWithConfig(n.cfg.RaftBindAddr, advertise, tc)
	if err != nil {
		return fmt.Errorf("listen for raft on %s: %w", n.cfg.RaftBindAddr, err)
	}
	n.trans = trans
	n.raftAddr = string(trans.LocalAddr())
	return nil
}

// Close shuts Raft down, closes the stores and forwarding connections and
// waits for the node's goroutines. It is idempotent.
func (n *Node) Close() error {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed.Swap(true) {
		return n.closeErr
	}
	n.closeErr = n.closeResources()
	n.log.Info("node closed")
	return n.closeErr
}

func (n *Node) closeResources() error {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	n.closing.Store(true)
	if n.stop != nil {
		n.stop()
	}
	if n.gossip != nil {
		// Leave first, so peers see LEFT (not DEAD) and stop probing, and
		// know that losing this node's Raft connections is expected.
		keep(n.gossip.leave(min(n.cfg.ApplyTimeout, 2*time.Second)))
	}
	if n.trans != nil {
		// Close the transport before raft.Shutdown, which closes it only
		// after its replication goroutines return: closed first, the
		// listener stops accepting as a shut-down transport (raft then
		// logs no accept errors) and a stream layer that ends its dials
		// and connections on Close (netsim's) frees calls a partition
		// holds. Closing twice is a no-op.
		keep(n.trans.Close())
	}
	raftStopped := true
	if n.raft != nil {
		if err := n.shutdownRaft(raftShutdownWait); err != nil {
			keep(err)
			raftStopped = false
		}
	}
	n.wg.Wait()
	// A Raft that did not stop may still be writing: closing bolt under
	// it would block or corrupt, so the store is left open (and the
	// error says why) rather than risk the log.
	if n.store != nil && raftStopped {
		keep(n.store.Close())
	}
	keep(n.pool.close())
	return firstErr
}

// boltLockWait bounds the wait for the Raft store's file lock: a process
// that died released it at once, so a lock held longer belongs to a live
// node.
const boltLockWait = 3 * time.Second

// raftShutdownWait bounds Close's wait for Raft's goroutines. Raft's own
// shutdown waits for them without a bound; none should block for long
// (every wait in them ends on shutdown), so one still running after this
// is a bug to report, not a reason to hang the process or a test run.
const raftShutdownWait = 30 * time.Second

// shutdownRaft shuts Raft down and waits up to wait for its goroutines.
// Past that it logs every goroutine's stack (the only way to see which
// wait did not end) and returns an error.
func (n *Node) shutdownRaft(wait time.Duration) error {
	done := make(chan error, 1)
	f := n.raft.Shutdown()
	go func() { done <- f.Error() }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n.log.Error("raft did not shut down; goroutines follow", "after", wait, "stacks", string(buf))
	return fmt.Errorf("close node %s: raft did not shut down within %v (goroutine stacks logged)", n.cfg.NodeID, wait)
}

// RaftAddr is the Raft address this node advertises.
func (n *Node) RaftAddr() string { return n.raftAddr }

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// APIAddr is this node's advertised client API address.
func (n *Node) APIAddr() string { return n.cfg.APIAddr }

// ClusterAddr is this node's advertised cluster-plane address.
func (n *Node) ClusterAddr() string { return n.cfg.ClusterAddr }

// FSM is the local replica this node applies to.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Register serves this node's cluster-plane services on s, the server of
// the node's cluster listener (NewServer), never the client API's: the
// Cluster service (joins, forwarded writes, status polls) and DomainKeys
// (domain-key peer calls, over Config.DomainKeys).
func (n *Node) Register(s grpc.ServiceRegistrar) {
	registerServer(s, n)
	registerDomainKeys(s, n)
}
