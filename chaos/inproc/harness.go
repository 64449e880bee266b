// Package inproc is the in-process chaos harness: N nodes in M regions
// inside the calling process, each built by node.StartLocal over
// node.Start (the one wiring) on port 0, with node-to-node traffic through
// one netsim.Sim, TCP gates in front of each node's client API and cluster
// plane, and each node's HSM behind an hsmfault switch. Fast enough for CI on every commit.
package inproc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmfault"
	"github.com/meridiankms/meridian/node"
)

// Config describes the cluster the harness starts.
type Config struct {
	// Dir holds every node's data dir (required; a test's t.TempDir()).
	Dir string
	// Regions (default us-east, eu-west, ap-south) and nodes per region
	// (default 1).
	Regions   []string
	PerRegion int
	// OneWay and Jitter are the baseline inter-region latency (0: LAN).
	// With a baseline, Raft timings follow cluster.WANTimings(2*OneWay).
	OneWay, Jitter time.Duration
	// Logger receives every node's logs (nil: discarded).
	Logger *slog.Logger
	// Tweak, if set, adjusts each node's config before its first start.
	Tweak func(*node.Config)
	// StartTimeout bounds each node's start, join included (default 60 s:
	// a joiner makes an RSA-3072 transport key, seconds under -race on a
	// loaded machine).
	StartTimeout time.Duration
}

// member is one node slot: its config, its running node (nil when
// killed), its gate and its HSM switch.
type member struct {
	cfg    node.Config
	n      *node.Node
	gate   *gate // in front of the client API
	cgate  *gate // in front of the cluster plane (node-to-node gRPC)
	hsm    *hsmfault.Switch
	frozen bool
}

// Harness is an in-process cluster that implements chaos.Harness.
type Harness struct {
	cfg Config
	sim *netsim.Sim

	mu      sync.Mutex
	members []*member
}

var _ chaos.Harness = (*Harness)(nil)

// passphrase opens the nodes' soft HSM files; a throwaway cluster's.
var passphrase = []byte("chaos-inproc-passphrase-not-secret")

// New starts the cluster and returns once every node is in Raft and sees
// the leader. Close stops it.
func New(ctx context.Context, cfg Config) (_ *Harness, err error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: inproc: no data dir", chaos.ErrBadOptions)
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{"us-east", "eu-west", "ap-south"}
	}
	if cfg.PerRegion == 0 {
		cfg.PerRegion = 1
	}
	if cfg.PerRegion < 0 || cfg.PerRegion > 5 {
		return nil, fmt.Errorf("%w: inproc: %d nodes per region, want 1..5", chaos.ErrBadOptions, cfg.PerRegion)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Harness{cfg: cfg, sim: netsim.New()}
	h.sim.SetDefault(cfg.OneWay, cfg.Jitter)
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	gossipKey := make([]byte, 32)
	if _, err := rand.Read(gossipKey); err != nil {
		return nil, err
	}
	total := len(cfg.Regions) * cfg.PerRegion
	for i := range total {
		m, err := h.newMember(i, gossipKey)
		if err != nil {
			return nil, err
		}
		h.members = append(h.members, m)
	}
	// Node 1 founds the cluster; the others join through it, one by one so
	// each joins a settled configuration.
	for i, m := range h.members {
		if i > 0 {
			m.cfg.Join = []string{h.members[0].cgate.addr()}
			m.cfg.GossipSeeds = []string{h.members[0].cfg.GossipAddr}
		}
		if err := h.start(ctx, m); err != nil {
			return nil, err
		}
		m.cfg.Bootstrap, m.cfg.HSM.CreateIfMissing = false, false // from now on, restarts rejoin
	}
	if err := h.WaitConverged(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Harness) newMember(i int, gossipKey []byte) (*member, error) {
	region := h.cfg.Regions[i%len(h.cfg.Regions)]
	id := fmt.Sprintf("node-%d", i+1)
	g, err := newGate("") // its backend is set at each start (h.start)
	if err != nil {
		return nil, err
	}
	cg, err := newGate("")
	if err != nil {
		g.close()
		return nil, err
	}
	sw := &hsmfault.Switch{}
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Region, cfg.Zone = id, region, fmt.Sprintf("%s%c", region, 'a'+i/len(h.cfg.Regions)%3)
	cfg.DataDir = filepath.Join(h.cfg.Dir, id)
	// Port 0 everywhere: the first start binds, and the node keeps those
	// addresses across restarts (h.start pins them), as a real node's
	// configured ones; no port is reserved and released. Clients and peers
	// know only the gates' addresses.
	cfg.APIAddr, cfg.AdvertiseAPIAddr, cfg.RaftAddr, cfg.MetricsAddr = "127.0.0.1:0", g.addr(), "127.0.0.1:0", ""
	cfg.ClusterAddr, cfg.AdvertiseClusterAddr = "127.0.0.1:0", cg.addr()
	cfg.GossipAddr, cfg.GossipKey, cfg.GossipLAN = "127.0.0.1:0", gossipKey, true
	// Each node's soft HSM file lives in its data dir: a wiped node loses
	// its domain key too and is enrolled again when it rejoins.
	cfg.HSM = node.HSMConfig{Backend: "soft", Passphrase: passphrase, FastKDF: true, CreateIfMissing: i == 0}
	cfg.Bootstrap = i == 0
	cfg.TargetVoters = 5
	cfg.StabilizationTime = 300 * time.Millisecond
	cfg.DeadServerGrace = 3 * time.Second
	cfg.SchedulerInterval = -1
	// Raft runs with the timings users get: the LAN defaults, or
	// cluster.WANTimings for the simulated round trip. Shorter test
	// timings made elections livelock on a loaded machine.
	if h.cfg.OneWay > 0 {
		cfg.WANRTT = 2 * (h.cfg.OneWay + h.cfg.Jitter)
	} else {
		// Except the lease, stretched to the heartbeat timeout (its
		// upper limit): six nodes under -race in one process on two
		// loaded cores answer heartbeats late enough that a 200 ms
		// lease deposed the leader every few seconds during start-up.
		d := cluster.DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.HeartbeatTimeout
	}
	cfg.Sim = h.sim
	cfg.HSMWrapper = func(x hsm.HSM) hsm.HSM { return hsmfault.Wrap(x, sw) }
	cfg.Logger = h.cfg.Logger.With("harness", "inproc")
	cfg.BuildVersion = "dev" + chaos.ChaosMarker // the harness made this cluster to be broken
	if h.cfg.Tweak != nil {
		h.cfg.Tweak(&cfg)
	}
	return &member{cfg: cfg, gate: g, cgate: cg, hsm: sw}, nil
}

// start starts m's node (m.n must be nil) on its pinned addresses (port 0
// on a first start); node.StartLocal retries a port still in use. The
// cluster plane gets a fresh port at each start: only its gate's address
// is known to anyone, and the gate learns the port before the node joins.
func (h *Harness) start(ctx context.Context, m *member) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	m.setDown(false)
	cfg := m.cfg
	cfg.ClusterAddr = "127.0.0.1:0"
	n, err := node.StartLocal(ctx, cfg, m.cgate.setBackend)
	if err != nil {
		m.setDown(true)
		return fmt.Errorf("inproc: %w", err)
	}
	n.PinAddrs(&m.cfg)
	m.gate.setBackend(n.APIAddr())
	h.mu.Lock()
	m.n = n
	h.mu.Unlock()
	return nil
}

func (h *Harness) member(id string) (*member, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m.cfg.NodeID == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", chaos.ErrUnknownNode, id)
}

// Name implements chaos.Harness.
func (h *Harness) Name() string { return "inproc" }

// Capabilities implements chaos.Harness: everything, Freeze approximated
// (see DESIGN.md).
func (h *Harness) Capabilities() chaos.Capability { return chaos.CapAll }

// ChaosEnabled implements chaos.Harness: the harness made the cluster.
func (h *Harness) ChaosEnabled(context.Context) (bool, error) { return true, nil }

// Sim is the harness's network simulator (for tests that add their own
// faults).
func (h *Harness) Sim() *netsim.Sim { return h.sim }

// Node returns the running node id (nil when killed).
func (h *Harness) Node(id string) *node.Node {
	m, err := h.member(id)
	if err != nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return m.n
}

// Nodes implements chaos.Harness.
func (h *Harness) Nodes(context.Context) ([]chaos.NodeInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]chaos.NodeInfo, 0, len(h.members))
	for _, m := range h.members {
		failed, _ := m.hsm.State()
		out = append(out, chaos.NodeInfo{ID: m.cfg.NodeID, Region: m.cfg.Region, APIAddr: m.gate.addr(),
			Alive: m.n != nil, Frozen: m.frozen, HSMFailed: failed})
	}
	return out, nil
}

// Leader implements chaos.Harness: the live, unfrozen node that leads (a
// frozen or cut-off former leader may still believe it does; the highest
// term wins).
func (h *Harness) Leader(context.Context) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	best, term := "", uint64(0)
	for _, m := range h.members {
		if m.n == nil || m.frozen || !m.n.Cluster().IsLeader() {
			continue
		}
		if t := m.n.Cluster().Stats().Term; best == "" || t > term {
			best, term = m.cfg.NodeID, t
		}
	}
	if best == "" {
		return "", chaos.ErrNoLeader
	}
	return best, nil
}

// ClientConfig implements chaos.Harness: every node's gate as seeds.
func (h *Harness) ClientConfig(region string) client.Config {
	h.mu.Lock()
	var seeds []string
	for _, m := range h.members {
		seeds = append(seeds, m.gate.addr())
	}
	h.mu.Unlock()
	// The client's own region first: New connects to the first that answers.
	slices.SortStableFunc(seeds, func(a, b string) int { return h.regionRank(a, region) - h.regionRank(b, region) })
	cfg := client.DefaultConfig(seeds...)
	cfg.Insecure, cfg.Region = true, region
	return cfg
}

func (h *Harness) regionRank(addr, region string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m.gate.addr() == addr && m.cfg.Region == region {
			return 0
		}
	}
	return 1
}

// Close stops every node and gate.
func (h *Harness) Close() error {
	h.mu.Lock()
	members := slices.Clone(h.members)
	h.mu.Unlock()
	var errs []error
	for _, m := range members {
		m.hsm.Release()
		m.setDown(true)
	}
	h.sim.HealAll()
	for _, m := range slices.Backward(members) {
		h.mu.Lock()
		n := m.n
		m.n = nil
		h.mu.Unlock()
		if n != nil {
			errs = append(errs, n.Close())
		}
		m.gate.close()
		m.cgate.close()
	}
	return errors.Join(errs...)
}

// liveSeeds are the cluster-plane gate and gossip addresses of the running
// nodes other than skip: what a restarting node's --join flags would name.
func (h *Harness) liveSeeds(skip *member) (join, gossip []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m != skip && m.n != nil {
			join = append(join, m.cgate.addr())
			gossip = append(gossip, m.cfg.GossipAddr)
		}
	}
	if len(join) == 0 { // a cold start of everything: name every peer
		for _, m := range h.members {
			if m != skip {
				join = append(join, m.cgate.addr())
				gossip = append(gossip, m.cfg.GossipAddr)
			}
		}
	}
	return join, gossip
}

// setDown, freeze and thaw act on both of m's gates at once, as a process
// kill or SIGSTOP acts on all of its sockets.
func (m *member) setDown(down bool) {
	m.gate.setDown(down)
	m.cgate.setDown(down)
}

func (m *member) freeze() {
	m.gate.freeze()
	m.cgate.freeze()
}

func (m *member) thaw() {
	m.gate.thaw()
	m.cgate.thaw()
}

// removeDataDir deletes a killed node's data dir (the HSM file included).
func removeDataDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("inproc: wipe %s: %w", dir, err)
	}
	return nil
}
