// Package inproc is the in-process chaos harness: the chaos.Harness over
// node/localcluster (N nodes in M regions inside the calling process, each
// built by node.Start, node-to-node traffic through one netsim.Sim, each
// node's HSM behind an hsmfault switch), with TCP gates in front of each
// node's client API and cluster plane. Fast enough for CI on every commit.
package inproc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
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

// member is one node slot: its gates and whether it is frozen; the node
// itself, its config and its HSM switch are the localcluster's
// (index i).
type member struct {
	i      int
	id     string
	region string
	gate   *gate // in front of the client API
	cgate  *gate // in front of the cluster plane (node-to-node gRPC)
	frozen bool
}

// Harness is an in-process cluster that implements chaos.Harness.
type Harness struct {
	cfg Config
	c   *localcluster.Cluster

	mu      sync.Mutex
	members []*member
}

var _ chaos.Harness = (*Harness)(nil)

// New starts the cluster and returns once every node is in Raft and sees
// the leader. Close stops it.
func New(ctx context.Context, cfg Config) (_ *Harness, err error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: inproc: no data dir", chaos.ErrBadOptions)
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = localcluster.Regions
	}
	if cfg.PerRegion == 0 {
		cfg.PerRegion = 1
	}
	if cfg.PerRegion < 0 || cfg.PerRegion > 5 {
		return nil, fmt.Errorf("%w: inproc: %d nodes per region, want 1..5", chaos.ErrBadOptions, cfg.PerRegion)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Harness{cfg: cfg}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	// Node 1 founds the cluster; the others join through the nodes before
	// them, one by one so each joins a settled configuration. Each node's
	// soft HSM file lives in its data dir: a wiped node loses its domain
	// key too and is enrolled again when it rejoins.
	h.c, err = localcluster.New(ctx, localcluster.Options{
		Dir: cfg.Dir, Nodes: len(cfg.Regions) * cfg.PerRegion, Regions: cfg.Regions,
		Regional: true, OneWay: cfg.OneWay, Jitter: cfg.Jitter, OwnHSM: true,
		Fronts:       h.newMember,
		Logger:       cfg.Logger.With("harness", "inproc"),
		StartTimeout: cfg.StartTimeout,
		Setup: func(i int, c *node.Config) {
			c.DeadServerGrace = 3 * time.Second
			c.BuildVersion = "dev" + chaos.ChaosMarker // the harness made this cluster to be broken
			if cfg.Tweak != nil {
				cfg.Tweak(c)
			}
			h.mu.Lock()
			h.members[i].id, h.members[i].region = c.NodeID, c.Region
			h.mu.Unlock()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	if err := h.WaitConverged(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// newMember makes node i's gates, which the node advertises: clients and
// peers know only their addresses. The cluster plane gets a fresh port at
// each start, and its gate learns the port before the node joins.
func (h *Harness) newMember(i int) (api, clusterPlane localcluster.Front, err error) {
	g, err := newGate("") // its backend is set at each start
	if err != nil {
		return nil, nil, err
	}
	cg, err := newGate("")
	if err != nil {
		g.close()
		return nil, nil, err
	}
	h.mu.Lock()
	h.members = append(h.members, &member{i: i, gate: g, cgate: cg})
	h.mu.Unlock()
	return g, cg, nil
}

// start starts m's node (which must be stopped) through localcluster, which
// rejoins it through the live nodes after its first start.
func (h *Harness) start(ctx context.Context, m *member) error {
	m.setDown(false)
	if err := h.c.StartNode(ctx, m.i); err != nil {
		m.setDown(true)
		return fmt.Errorf("inproc: %w", err)
	}
	return nil
}

func (h *Harness) member(id string) (*member, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m.id == id {
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
func (h *Harness) Sim() *netsim.Sim { return h.c.Sim }

// Node returns the running node id (nil when killed).
func (h *Harness) Node(id string) *node.Node {
	m, err := h.member(id)
	if err != nil {
		return nil
	}
	return h.c.Node(m.i)
}

// Nodes implements chaos.Harness.
func (h *Harness) Nodes(context.Context) ([]chaos.NodeInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]chaos.NodeInfo, 0, len(h.members))
	for _, m := range h.members {
		failed, _ := h.c.Faults(m.i).State()
		out = append(out, chaos.NodeInfo{ID: m.id, Region: m.region, APIAddr: m.gate.Addr(),
			Alive: h.c.Node(m.i) != nil, Frozen: m.frozen, HSMFailed: failed})
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
		n := h.c.Node(m.i)
		if n == nil || m.frozen || !n.Cluster().IsLeader() {
			continue
		}
		if t := n.Cluster().Stats().Term; best == "" || t > term {
			best, term = m.id, t
		}
	}
	if best == "" {
		return "", chaos.ErrNoLeader
	}
	return best, nil
}

// ClientConfig implements chaos.Harness: every node's gate as seeds, the
// client's own region first (New connects to the first that answers).
func (h *Harness) ClientConfig(region string) client.Config {
	h.mu.Lock()
	var seeds, others []string
	for _, m := range h.members {
		if m.region == region {
			seeds = append(seeds, m.gate.Addr())
		} else {
			others = append(others, m.gate.Addr())
		}
	}
	h.mu.Unlock()
	cfg := client.DefaultConfig(append(seeds, others...)...)
	cfg.Insecure, cfg.Region = true, region
	return cfg
}

// Close stops every node and gate.
func (h *Harness) Close() error {
	h.mu.Lock()
	members := slices.Clone(h.members)
	h.mu.Unlock()
	for _, m := range members {
		m.setDown(true)
	}
	var err error
	if h.c != nil {
		err = h.c.Close() // releases held HSM calls and heals the Sim first
	}
	for _, m := range members {
		m.gate.close()
		m.cgate.close()
	}
	return err
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
