// Package localcluster is the one in-process Meridian cluster: N whole
// nodes (node.Start, the one wiring, through node.StartLocal) over real
// TCP on 127.0.0.1, with real bolt files and soft HSM files, in the spirit
// of hashicorp/raft's MakeCluster and rqlite's system_test helpers. Every
// multi-node test above package cluster builds on it: node's tests through
// node/nodetest (which fails the test instead of returning errors) and the
// chaos package's in-process harness (chaos/inproc, which adds its TCP
// gates as Fronts). It imports no test code: chaos/inproc is linked into
// the meridian binary. Package cluster keeps cluster/clustertest, a
// Raft-level harness that cannot import node.
//
// Nodes start on port 0 and keep the addresses they bound across restarts
// (node.Node.PinAddrs); no port is reserved and released. Each node's HSM
// is wrapped in an hsmfault switch (Faults), the one fault-injecting HSM
// decorator.
package localcluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmfault"
	"github.com/meridiankms/meridian/internal/wait"
	"github.com/meridiankms/meridian/node"
)

// Regions are the default regions, assigned in turn: node-1 us-east,
// node-2 eu-west, node-3 ap-south, node-4 us-east, ...
var Regions = []string{"us-east", "eu-west", "ap-south"}

// Passphrase opens the soft HSM files of harness clusters; a throwaway
// cluster's, not a secret.
var Passphrase = []byte("test-passphrase-not-secret")

// Options describe the cluster New starts.
type Options struct {
	// Dir holds every node's data dir (required for New; T uses the
	// test's t.TempDir()).
	Dir string
	// Nodes is how many nodes New starts (0 is allowed: add them with
	// AddNode). Node 1 bootstraps; the others join through the nodes
	// started before them, one at a time, so each joins a settled
	// configuration.
	Nodes int
	// Regions are assigned to nodes in turn (default Regions).
	Regions []string
	// Regional nodes gossip (an encrypted LAN pool with a fresh key), have
	// zones, run autopilot with short test timings (five voters spread over
	// the regions) and send their node-to-node traffic (Raft, forwarding,
	// gossip) through Sim, so a test can add latency and cut regions
	// apart. Clients stay outside the Sim: a partition cuts nodes from
	// nodes, never a test from a node.
	Regional bool
	// OneWay and Jitter are the Sim's baseline inter-region latency
	// (Regional only; 0: LAN). With a baseline, Raft timings follow
	// cluster.WANTimings(2*(OneWay+Jitter)).
	OneWay, Jitter time.Duration
	// OwnHSM gives each node a soft HSM file in its own data dir, so a
	// joining node is enrolled (and a wiped one enrolled again). Without
	// it every node opens one sealed file, as if copied to each host:
	// joins skip the RSA transport key, the slow part of enrolment.
	OwnHSM bool
	// Fronts, if set, stand in front of node i's client API and cluster
	// plane (TCP proxies a chaos harness can cut or freeze): the node
	// advertises their addresses, so clients and peers reach it only
	// through them, and its cluster plane gets a fresh port at each start.
	Fronts func(i int) (api, clusterPlane Front, err error)
	// Logger receives every node's logs (nil: discarded).
	Logger *slog.Logger
	// Setup, if set, adjusts node i's config after the harness's defaults
	// (Bootstrap, Join and HSM included) and before its first start.
	Setup func(i int, cfg *node.Config)
	// TLS makes a throwaway CA (Dir/tls/ca.pem, its key in memory) and
	// gives every node a node certificate of it (SPIFFE node id, region,
	// 127.0.0.1), unless Setup set the node's TLS files itself: the API,
	// the cluster plane and Raft then run TLS as in production. Clients
	// get a certificate from ClientTLS.
	TLS bool
	// StartTimeout bounds each node's start, join included (default 60 s:
	// an enrolled joiner makes an RSA-3072 transport key, seconds under
	// -race on a loaded machine).
	StartTimeout time.Duration
}

// A Front stands in front of one of a node's listeners.
type Front interface {
	// Addr is the address clients or peers dial.
	Addr() string
	// SetBackend points the front at the node's listener; the harness calls
	// it at every start, before the node joins.
	SetBackend(addr string)
}

// Cluster is a set of in-process nodes. Its accessors are safe for
// concurrent use, and different nodes may be started and stopped at once
// (a cold restart of everything); one node must not be started or stopped
// from two goroutines at once, nor AddNode run concurrently, nor a node
// started while Close runs. Nodes and Cfgs are for tests that start and
// stop nodes from one goroutine (nodetest.T), and are read under no lock.
type Cluster struct {
	opts Options
	// Sim carries the node-to-node traffic of Regional clusters (nil
	// otherwise).
	Sim       *netsim.Sim
	gossipKey []byte
	tlsCA     *harnessCA // Options.TLS only

	mu sync.Mutex
	// Nodes[i] is node i while it runs (nil when stopped); Cfgs[i] is what
	// it (re)starts with, its bound addresses pinned after the first start.
	Nodes  []*node.Node
	Cfgs   []node.Config
	faults []*hsmfault.Switch
	fronts [][2]Front
}

// New starts opts.Nodes nodes and returns once each has started (the
// first has become leader); convergence (every node a member, voters
// placed) is the caller's wait. On error every started node is closed.
func New(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Dir == "" {
		return nil, errors.New("localcluster: no data dir")
	}
	if len(opts.Regions) == 0 {
		opts.Regions = Regions
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{opts: opts}
	if opts.Regional {
		c.Sim = netsim.New()
		c.Sim.SetDefault(opts.OneWay, opts.Jitter)
		c.gossipKey = make([]byte, 32)
		if _, err := rand.Read(c.gossipKey); err != nil {
			return nil, err
		}
	}
	if opts.TLS {
		if c.tlsCA, err = newHarnessCA(opts.Dir); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for range opts.Nodes {
		if _, err := c.AddNode(ctx, "", nil); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Config is the harness's config of node i of a cluster in dir, before
// any Setup: soft HSM on the shared sealed file (node 1 makes it), port 0
// everywhere, the Raft timings users get, logs discarded. Tests that
// build a node by hand start from it.
func Config(dir string, i int) node.Config {
	cfg := node.DefaultConfig()
	cfg.NodeID = fmt.Sprintf("node-%d", i+1)
	cfg.Region = Regions[i%len(Regions)]
	cfg.DataDir = filepath.Join(dir, cfg.NodeID)
	// Port 0 everywhere: StartNode pins the addresses the node bound, and
	// a restarted node listens on them again.
	cfg.APIAddr, cfg.RaftAddr, cfg.ClusterAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.HSM = node.HSMConfig{Backend: "soft", SoftPath: filepath.Join(dir, "domain.sealed"), // one sealed file, as if copied
		Passphrase: Passphrase, FastKDF: true, CreateIfMissing: i == 0}
	cfg.Bootstrap = i == 0
	cfg.SchedulerInterval = -1
	// Raft runs with the timings users get (cluster.DefaultConfig; node
	// leaves them zero for the cluster to fill in). Shorter test timings
	// (100 ms elections) made elections livelock on a loaded machine:
	// votes came back after the candidate's timeout. The lease alone is
	// stretched to the heartbeat timeout (raft's limit): six nodes under
	// -race in one process on two loaded cores answer heartbeats late
	// enough that a 200 ms lease deposed the leader every few seconds.
	d := cluster.DefaultConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.HeartbeatTimeout
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// config is Config for node i of c, with c's options applied.
func (c *Cluster) config(i int) node.Config {
	o := c.opts
	cfg := Config(o.Dir, i)
	cfg.Region = o.Regions[i%len(o.Regions)]
	if o.OwnHSM {
		cfg.HSM.SoftPath = "" // the default: in its data dir, wiped with it
	}
	if o.Regional {
		if o.OneWay > 0 {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0
			cfg.WANRTT = 2 * (o.OneWay + o.Jitter)
		}
		cfg.GossipAddr, cfg.GossipKey, cfg.GossipLAN = "127.0.0.1:0", c.gossipKey, true
		cfg.TargetVoters = 5
		cfg.StabilizationTime = 300 * time.Millisecond
		cfg.DeadServerGrace = 1500 * time.Millisecond
		cfg.Sim = c.Sim
	}
	cfg.Logger = o.Logger
	return cfg
}

// AddNode configures one more node (in region, or the next region in turn
// when region is ""; setup, if set, runs after Options.Setup), starts it
// joining through the live nodes and returns its index. The first node
// bootstraps and AddNode waits for it to lead.
func (c *Cluster) AddNode(ctx context.Context, region string, setup func(i int, cfg *node.Config)) (int, error) {
	c.mu.Lock()
	i := len(c.Cfgs)
	c.mu.Unlock()
	cfg := c.config(i)
	if region != "" {
		cfg.Region = region
	}
	sw := new(hsmfault.Switch)
	cfg.HSMWrapper = func(h hsm.HSM) hsm.HSM { return hsmfault.Wrap(h, sw) }
	var fronts [2]Front
	if c.opts.Fronts != nil {
		api, cp, err := c.opts.Fronts(i)
		if err != nil {
			return -1, err
		}
		fronts = [2]Front{api, cp}
		cfg.AdvertiseAPIAddr, cfg.AdvertiseClusterAddr = api.Addr(), cp.Addr()
	}
	if i > 0 {
		cfg.Join = c.liveJoin(-1) // Setup may name others
	}
	if c.opts.Setup != nil {
		c.opts.Setup(i, &cfg)
	}
	if setup != nil {
		setup(i, &cfg)
	}
	if c.opts.Regional && cfg.Zone == "" {
		cfg.Zone = fmt.Sprintf("%s%c", cfg.Region, 'a'+i/len(c.opts.Regions)%3)
	}
	if c.tlsCA != nil && !cfg.TLS.Enabled() {
		// After the setups: the certificate names the region the node
		// ends up in.
		tc, err := c.IssueNodeCert(cfg.NodeID, cfg.Region)
		if err != nil {
			return -1, err
		}
		cfg.TLS = tc
	}
	c.mu.Lock()
	c.Cfgs = append(c.Cfgs, cfg)
	c.Nodes = append(c.Nodes, nil)
	c.faults = append(c.faults, sw)
	c.fronts = append(c.fronts, fronts)
	c.mu.Unlock()
	if err := c.StartNode(ctx, i); err != nil {
		return -1, err
	}
	if i == 0 {
		if _, err := c.AwaitLeader(ctx); err != nil {
			return -1, err
		}
	}
	return i, nil
}

// StartNode (re)starts node i (which must be stopped) on its data dir and
// pinned addresses. After its first start a node joins through the live
// nodes' cluster planes and gossips with them, as an operator's --join
// flags would name them (a wiped node is thus enrolled again); with no live
// node it resumes from its own Raft state, as in a cold start of
// everything.
func (c *Cluster) StartNode(ctx context.Context, i int) error { return c.start(ctx, i, true) }

// ResumeNode restarts node i from its own Raft state without joining: a
// member restarting alone.
func (c *Cluster) ResumeNode(ctx context.Context, i int) error { return c.start(ctx, i, false) }

func (c *Cluster) start(ctx context.Context, i int, rejoin bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	c.mu.Lock()
	if c.Nodes[i] != nil {
		c.mu.Unlock()
		return fmt.Errorf("localcluster: %s is running", c.Cfgs[i].NodeID)
	}
	cfg, fronts := c.Cfgs[i], c.fronts[i]
	restart := c.Cfgs[i].RaftAddr != "127.0.0.1:0" // pinned by an earlier start
	c.mu.Unlock()
	if restart {
		cfg.Join = nil
		if rejoin {
			cfg.Join = c.liveJoin(i)
		}
	}
	if len(cfg.GossipSeeds) == 0 {
		cfg.GossipSeeds = c.liveGossip(i)
	}
	var listening func(string)
	if fronts[1] != nil {
		// Only the front's address is known to anyone: the plane may move.
		cfg.ClusterAddr, listening = "127.0.0.1:0", fronts[1].SetBackend
	}
	n, err := node.StartLocal(ctx, cfg, listening)
	if err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	if fronts[0] != nil {
		fronts[0].SetBackend(n.APIAddr())
	}
	c.mu.Lock()
	c.Nodes[i] = n
	cur := &c.Cfgs[i]
	n.PinAddrs(cur)
	// From now on a restart resumes its state or joins: it never founds a
	// second cluster or makes a second domain key.
	cur.Bootstrap, cur.HSM.CreateIfMissing = false, false
	c.mu.Unlock()
	return nil
}

// Forget drops the last node (stopped, and removed from Raft by the test)
// from the harness.
func (c *Cluster) Forget(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i != len(c.Cfgs)-1 || c.Nodes[i] != nil {
		return fmt.Errorf("localcluster: forget %d: only the last node, stopped", i)
	}
	c.Nodes, c.Cfgs, c.faults, c.fronts = c.Nodes[:i], c.Cfgs[:i], c.faults[:i], c.fronts[:i]
	return nil
}

// StopNode closes node i (a stopped node stays stopped).
func (c *Cluster) StopNode(i int) error {
	c.mu.Lock()
	n := c.Nodes[i]
	c.Nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("localcluster: close %s: %w", n.ID(), err)
	}
	return nil
}

// Close stops every node, the last started first, and heals the Sim.
func (c *Cluster) Close() error {
	for _, sw := range c.faultSwitches() {
		sw.Release()
	}
	if c.Sim != nil {
		c.Sim.HealAll()
	}
	var errs []error
	for i := c.Len() - 1; i >= 0; i-- {
		errs = append(errs, c.StopNode(i))
	}
	return errors.Join(errs...)
}

func (c *Cluster) faultSwitches() []*hsmfault.Switch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.faults)
}

// Len is how many nodes the cluster has (running or not).
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.Cfgs)
}

// Node is node i while it runs (nil when stopped).
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i]
}

// NodeConfig is a copy of node i's config (addresses pinned).
func (c *Cluster) NodeConfig(i int) node.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Cfgs[i]
}

// EditConfig changes what node i starts with next time.
func (c *Cluster) EditConfig(i int, edit func(*node.Config)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	edit(&c.Cfgs[i])
}

// Faults is node i's HSM fault switch.
func (c *Cluster) Faults(i int) *hsmfault.Switch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults[i]
}

// APIAddr is where clients reach node i: its front, or its listener.
func (c *Cluster) APIAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fronts[i][0]; f != nil {
		return f.Addr()
	}
	return c.Cfgs[i].APIAddr
}

// ClusterAddr is where peers reach node i's cluster plane.
func (c *Cluster) ClusterAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clusterAddr(i)
}

func (c *Cluster) clusterAddr(i int) string {
	if f := c.fronts[i][1]; f != nil {
		return f.Addr()
	}
	if n := c.Nodes[i]; n != nil {
		return n.ClusterAddr()
	}
	return c.Cfgs[i].ClusterAddr
}

// liveJoin is what a (re)starting node names with --join: the running
// nodes' cluster planes, skip's excluded.
func (c *Cluster) liveJoin(skip int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []string
	for j := range c.Cfgs {
		if j != skip && c.Nodes[j] != nil {
			live = append(live, c.clusterAddr(j))
		}
	}
	return live
}

// liveGossip is what a (re)starting node names as gossip seeds: the running
// nodes' gossip addresses, or, on a cold start of everything, every other
// node's (gossip joins in the background, so the dead ones cost nothing).
func (c *Cluster) liveGossip(skip int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opts.Regional {
		return nil
	}
	var live, all []string
	for j, cfg := range c.Cfgs {
		if j == skip {
			continue
		}
		all = append(all, cfg.GossipAddr)
		if c.Nodes[j] != nil {
			live = append(live, cfg.GossipAddr)
		}
	}
	if len(live) == 0 {
		return all
	}
	return live
}

// Live is the running nodes, in index order.
func (c *Cluster) Live() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node.Node
	for _, n := range c.Nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Leader is the index of the running node that leads right now, or -1;
// of several that believe they lead (a cut-off former leader), the one of
// the highest term.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, term := -1, uint64(0)
	for i, n := range c.Nodes {
		if n == nil || !n.Cluster().IsLeader() {
			continue
		}
		if t := n.Cluster().Stats().Term; best < 0 || t > term {
			best, term = i, t
		}
	}
	return best
}

// LeaderNode is the running node that leads right now, or nil.
func (c *Cluster) LeaderNode() *node.Node {
	if i := c.Leader(); i >= 0 {
		return c.Node(i)
	}
	return nil
}

// AwaitLeader polls until some running node leads and returns its index.
func (c *Cluster) AwaitLeader(ctx context.Context) (int, error) {
	i := -1
	if err := wait.Until(ctx, 0, func() bool { i = c.Leader(); return i >= 0 }); err != nil {
		return -1, fmt.Errorf("localcluster: no leader: %w", err)
	}
	return i, nil
}

// Index is the index of the node with id (-1 if none).
func (c *Cluster) Index(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cfg := range c.Cfgs {
		if cfg.NodeID == id {
			return i
		}
	}
	return -1
}

// InRegion is the indexes of the running nodes of region.
func (c *Cluster) InRegion(region string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.Nodes {
		if n != nil && c.Cfgs[i].Region == region {
			out = append(out, i)
		}
	}
	return out
}

// Voters is the leader's voter ids by region (nil without a leader).
func (c *Cluster) Voters(ctx context.Context) map[string][]string {
	l := c.LeaderNode()
	if l == nil {
		return nil
	}
	ms, err := l.Cluster().Members(ctx)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, m := range ms {
		if m.Role == cluster.RoleVoter {
			out[m.Region] = append(out[m.Region], m.ID)
		}
	}
	return out
}

// Members reports whether every running node is in the leader's Raft
// configuration and knows the leader.
func (c *Cluster) Members(ctx context.Context) bool {
	l := c.LeaderNode()
	if l == nil {
		return false
	}
	live := c.Live()
	servers, err := l.Cluster().Servers(ctx)
	if err != nil || len(servers) != len(live) {
		return false
	}
	for _, n := range live {
		if id, addr := n.Cluster().Leader(); id == "" || addr == "" {
			return false
		}
	}
	return true
}
