// Package clustertest starts in-process Meridian Raft clusters over real
// TCP on 127.0.0.1 with real bolt files, for cluster's own tests: nodes of
// cluster.Node with an fsm and a cluster plane, but no keystore, HSM or
// client API (tests above cluster build whole nodes with package node).
// Every wait is a poll with a deadline, never a sleep.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/internal/testwait"
)

// WaitTimeout bounds every poll helper; generous because tests share a
// small machine and run with -race.
const WaitTimeout = 60 * time.Second

// FastConfig returns cfg with a short commit timeout and a bounded apply
// timeout for tests. Raft's heartbeat and election timeouts stay at the
// production defaults: with Nomad-style 100 ms timings, clusters under
// -race on two loaded cores fell into elections that never finished (the
// votes came back after each candidate's timeout).
func FastConfig(cfg cluster.Config) cluster.Config {
	// The lease may reach the heartbeat timeout (raft's limit); at 200 ms
	// loaded in-process leaders stepped down every few seconds.
	cfg.LeaderLeaseTimeout = cfg.HeartbeatTimeout
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	return cfg
}

// Option adjusts every node's Config before it starts.
type Option func(*cluster.Config)

// Cluster is a set of in-process nodes; Nodes[0] bootstrapped it.
type Cluster struct {
	t      testing.TB
	opts   []Option
	logger *slog.Logger
	mu     sync.Mutex
	Nodes  []*Node
	// Sim carries node-to-node traffic of regional clusters (StartRegions):
	// Raft, gRPC and gossip. Set latencies and faults on it at any time
	// (Partition, Block, Isolate(node ID), HealAll); with latency above
	// about 10 ms one way, set cluster.GossipConfig.RTT through an Option
	// so gossip's 50 ms LAN probes do not take latency for failure. Nil for
	// StartCluster.
	Sim       *netsim.Sim
	gossipKey []byte
}

// Node is one in-process member: a cluster.Node, its own fsm, and its
// cluster plane: a cluster.NewServer on its own listener (ClusterAddr).
// It has no client API: APIAddr is only a name it registers and
// advertises, and nothing listens there, so any node-to-node call sent to
// an API address fails.
type Node struct {
	*cluster.Node
	ID          string
	Dir         string
	FSM         *fsm.FSM
	APIAddr     string
	ClusterAddr string
	// Region and Zone are set for nodes of regional clusters.
	Region, Zone string
	gossipAddr   string
	streamLayer  *netsim.StreamLayer // regional nodes only
	c            *Cluster
	srv          *grpc.Server
	served       chan struct{}
	alive        bool
	// bootstrap is kept across restarts, as a server's flags are: a
	// restart must resume, not bootstrap again.
	bootstrap bool
}

// StartCluster starts n nodes: node-0 bootstraps, the others join it. It
// returns once all n are voters and every node knows the leader. Nodes are
// closed when the test ends.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	// The logger's cleanup is registered first so it runs last: nodes log
	// while they close.
	c := &Cluster{t: t, opts: opts, logger: TestLogger(t)}
	t.Cleanup(c.closeAll)
	c.AddNode(true)
	c.Leader()
	for i := 1; i < n; i++ {
		c.AddNode(false)
	}
	testwait.Eventually(c.t, WaitTimeout, "all nodes see a leader", func() bool {
		for _, nd := range c.Live() {
			if id, addr := nd.Leader(); id == "" || addr == "" {
				return false
			}
		}
		return true
	})
	return c
}

// AddNode starts a new node with a fresh data dir; unless bootstrap, it
// joins through the live nodes' cluster addresses.
func (c *Cluster) AddNode(bootstrap bool) *Node {
	c.t.Helper()
	c.mu.Lock()
	nd := &Node{ID: fmt.Sprintf("node-%d", len(c.Nodes)), Dir: c.t.TempDir(), c: c}
	c.Nodes = append(c.Nodes, nd)
	c.mu.Unlock()
	nd.bootstrap = bootstrap
	seeds := c.seeds(nd)
	nd.start("127.0.0.1:0", "127.0.0.1:0", bootstrap)
	if !bootstrap {
		nd.join(seeds)
	}
	return nd
}

func (c *Cluster) seeds(except *Node) []string {
	var s []string
	for _, nd := range c.Live() {
		if nd != except {
			s = append(s, nd.ClusterAddr)
		}
	}
	return s
}

func (nd *Node) start(clusterBind, raftBind string, bootstrap bool) {
	t := nd.c.t
	t.Helper()
	cfg := FastConfig(cluster.DefaultConfig())
	cfg.NodeID, cfg.DataDir, cfg.Region, cfg.Zone = nd.ID, nd.Dir, "test-1", "test-1a"
	var lis net.Listener
	var err error
	if nd.Region == "" {
		lis, err = net.Listen("tcp", clusterBind)
	} else {
		lis, err = nd.startRegional(&cfg, clusterBind, raftBind)
	}
	if err != nil {
		t.Fatalf("%s: listen: %v", nd.ID, err)
	}
	nd.APIAddr = nd.ID + ".api.invalid:7400" // named, never served
	cfg.APIAddr, cfg.ClusterAddr = nd.APIAddr, lis.Addr().String()
	cfg.RaftBindAddr, cfg.Bootstrap = raftBind, bootstrap
	cfg.Logger = nd.c.logger.With("node", nd.ID)
	for _, o := range nd.c.opts {
		o(&cfg)
	}
	nd.FSM = fsm.New(cfg.Logger)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	node, err := cluster.New(ctx, cfg, nd.FSM)
	if err != nil {
		lis.Close()
		t.Fatalf("%s: start: %v", nd.ID, err)
	}
	nd.Node, nd.ClusterAddr, nd.gossipAddr = node, cfg.ClusterAddr, node.GossipAddr()
	nd.srv = cluster.NewServer(cfg.Logger, nil)
	node.Register(nd.srv)
	nd.served = make(chan struct{})
	go func(srv *grpc.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(lis) // returns when Kill stops the server
	}(nd.srv, nd.served)
	nd.c.mu.Lock()
	nd.alive = true
	nd.c.mu.Unlock()
}

// Host is nd's attachment to the cluster's Sim (region nd.Region, node
// nd.ID): c.Sim.Isolate(nd.ID) cuts this node off. Nil outside
// StartRegions.
func (nd *Node) Host() *netsim.Host {
	if nd.c.Sim == nil {
		return nil
	}
	return nd.c.Sim.Host(nd.Region, nd.ID)
}

// startRegional routes nd's traffic (Raft, gRPC, gossip) through the
// cluster's Sim and turns gossip on; a restart reuses the gossip address
// and rejoins through the live nodes' gossip addresses.
func (nd *Node) startRegional(cfg *cluster.Config, clusterBind, raftBind string) (net.Listener, error) {
	c := nd.c
	*cfg = RegionalConfig(*cfg, c.gossipKey)
	cfg.Region, cfg.Zone = nd.Region, nd.Zone
	if nd.gossipAddr != "" {
		cfg.Gossip.BindAddr = nd.gossipAddr
		for _, o := range c.Live() {
			if o != nd {
				cfg.Gossip.Seeds = append(cfg.Gossip.Seeds, o.gossipAddr)
			}
		}
	}
	host := nd.Host()
	sl, err := host.StreamLayer(raftBind)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	cfg.StreamLayer, nd.streamLayer = sl, sl
	cfg.DialOptions = append(cfg.DialOptions, host.DialOption())
	cfg.Gossip.Transport = host.GossipTransport
	lis, err := host.Listen("tcp", clusterBind)
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("cluster plane: %w", err)
	}
	return lis, nil
}

func (nd *Node) join(seeds []string) {
	t := nd.c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := nd.Join(ctx, seeds); err != nil {
		t.Fatalf("%s: join: %v", nd.ID, err)
	}
}

// Kill stops the node (Raft, stores, cluster-plane server) and keeps its
// data dir.
func (nd *Node) Kill() {
	nd.c.t.Helper()
	nd.c.mu.Lock()
	if !nd.alive {
		nd.c.mu.Unlock()
		return
	}
	nd.alive = false
	nd.c.mu.Unlock()
	nd.srv.Stop()
	<-nd.served
	if nd.streamLayer != nil {
		// A killed process's sockets die with it. Without this, raft's
		// Shutdown waits out its 10 s I/O timeout on connections a
		// partition holds (it closes the transport only after its
		// replication goroutines return).
		_ = nd.streamLayer.Close()
	}
	if err := nd.Node.Close(); err != nil {
		nd.c.t.Errorf("%s: close: %v", nd.ID, err)
	}
}

// Restart starts a killed node again on its data dir, cluster and Raft
// addresses, with a fresh fsm that Raft refills.
func (nd *Node) Restart() {
	nd.c.t.Helper()
	nd.start(nd.ClusterAddr, nd.RaftAddr(), nd.bootstrap)
}

// RestartNewRaftPort restarts a killed node on a new Raft port and rejoins
// it, as an operator would after the port changed.
func (nd *Node) RestartNewRaftPort() {
	nd.c.t.Helper()
	nd.start(nd.ClusterAddr, "127.0.0.1:0", nd.bootstrap)
	nd.join(nd.c.seeds(nd))
}

// Alive reports whether the node is running.
func (nd *Node) Alive() bool {
	nd.c.mu.Lock()
	defer nd.c.mu.Unlock()
	return nd.alive
}

// Live returns the running nodes.
func (c *Cluster) Live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*Node
	for _, nd := range c.Nodes {
		if nd.alive {
			live = append(live, nd)
		}
	}
	return live
}

// Leader waits for a live node to be leader and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	return c.WaitForNewLeader(nil)
}

// WaitForNewLeader waits for a live node other than old to be leader.
func (c *Cluster) WaitForNewLeader(old *Node) *Node {
	c.t.Helper()
	var leader *Node
	testwait.Eventually(c.t, WaitTimeout, "a new leader", func() bool {
		for _, nd := range c.Live() {
			if nd != old && nd.IsLeader() {
				leader = nd
				return true
			}
		}
		return false
	})
	return leader
}

// WaitApplied waits until every live node's fsm has applied index.
func (c *Cluster) WaitApplied(index uint64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	for _, nd := range c.Live() {
		if err := nd.FSM.WaitApplied(ctx, index); err != nil {
			c.t.Fatalf("%s: wait for index %d (at %d): %v", nd.ID, index, nd.FSM.AppliedIndex(), err)
		}
	}
}

func (c *Cluster) closeAll() {
	for _, nd := range c.Live() {
		nd.Kill()
	}
}
