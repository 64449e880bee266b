package cluster

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberStatus is a member's gossip state.
type MemberStatus int

// Member statuses. StatusUnknown is a Raft server gossip has not reported.
// memberlist's public API does not expose SUSPECT, so a suspected member
// shows ALIVE until it is declared DEAD.
const (
	StatusAlive MemberStatus = iota
	StatusSuspect
	StatusDead
	StatusLeft
	StatusUnknown
)

func (s MemberStatus) String() string {
	return [...]string{"alive", "suspect", "dead", "left", "unknown"}[s]
}

// peer is one gossip member as this node last heard of it.
type peer struct {
	meta       Meta
	addr       string // gossip host:port
	status     MemberStatus
	since      time.Time // when status began
	aliveSince time.Time // start of the current alive streak
}

// gossip owns this node's memberlist and the peer table its events fill.
type gossip struct {
	ml      *memberlist.Memberlist
	log     *slog.Logger
	mu      sync.Mutex
	local   Meta
	peers   map[string]*peer // by node id, self included
	changed chan struct{}    // local meta changed: re-advertise
	// reconnectEvery paces rejoin attempts to DEAD members (reconnect.go).
	reconnectEvery time.Duration
}

// startGossip creates the memberlist (listening, not yet joined).
func (n *Node) startGossip() error {
	g := &gossip{
		log:     n.log.With("component", "gossip"),
		peers:   map[string]*peer{},
		changed: make(chan struct{}, 1),
		local: Meta{ID: n.cfg.NodeID, Region: n.cfg.Region, Zone: n.cfg.Zone, APIAddr: n.cfg.APIAddr, ClusterAddr: n.cfg.ClusterAddr,
			RaftAddr: n.raftAddr, BuildVersion: n.cfg.BuildVersion, Healthy: true, NoVote: n.cfg.NonVoter},
	}
	if _, err := g.local.Encode(); err != nil {
		return fmt.Errorf("gossip metadata: %w", err)
	}
	mc, err := n.cfg.memberlistConfig()
	if err != nil {
		return err
	}
	mc.Delegate, mc.Events = g, g
	mc.Logger = log.New(memberlistLog{l: g.log, quiet: n.quietMemberlist}, "", 0)
	g.reconnectEvery = reconnectInterval(mc)
	if f := n.cfg.Gossip.Transport; f != nil {
		t, err := f(n.cfg.Gossip.BindAddr, mc.Logger)
		if err != nil {
			return fmt.Errorf("start gossip on %s: %w", n.cfg.Gossip.BindAddr, err)
		}
		mc.Transport = t
		// memberlist learns the bound port only from its own transport;
		// it is the default port of a join address given without one.
		if _, port, err := t.FinalAdvertiseAddr("", 0); err == nil {
			mc.BindPort = port
		}
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown() // Create leaves a given transport open on some errors
		}
		return fmt.Errorf("start gossip on %s: %w", n.cfg.Gossip.BindAddr, err)
	}
	g.ml = ml
	n.gossip = g
	return nil
}

// memberlistConfig builds memberlist's config from c (delegates unset).
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultWANConfig()
	if c.Gossip.LAN {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval, mc.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
		mc.GossipInterval, mc.SuspicionMult, mc.RetransmitMult = 50*time.Millisecond, 2, 2
		mc.PushPullInterval = 2 * time.Second
		mc.DeadNodeReclaimTime = time.Second
		// memberlist pairs this with the push/pull interval (30 s / 30 s LAN);
		// past it only the reconnect loop brings a DEAD member back.
		mc.GossipToTheDeadTime = mc.PushPullInterval
	}
	if rtt := c.Gossip.RTT; rtt > 0 {
		// A direct probe must outlast a round trip with margin, and the
		// interval must leave room for the indirect probe that follows a
		// missed ack (two round trips, through a third member): 6 x RTT.
		mc.ProbeTimeout = max(mc.ProbeTimeout, 3*rtt)
		mc.ProbeInterval = max(mc.ProbeInterval, 6*rtt)
		mc.TCPTimeout = max(mc.TCPTimeout, 10*rtt)
	}
	mc.Name = c.NodeID
	host, port, err := splitHostPort(c.Gossip.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: gossip bind address: %v", ErrInvalidConfig, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if a := c.Gossip.AdvertiseAddr; a != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(a); err != nil {
			return nil, fmt.Errorf("%w: gossip advertise address: %v", ErrInvalidConfig, err)
		}
		// memberlist takes an IP only. A host name (a container's
		// service name) is resolved here, at every start, so a node
		// restarted at a new IP advertises the new one.
		if net.ParseIP(mc.AdvertiseAddr) == nil {
			ip, err := net.ResolveIPAddr("ip", mc.AdvertiseAddr)
			if err != nil {
				return nil, fmt.Errorf("resolve gossip advertise address %q: %w", a, err)
			}
			mc.AdvertiseAddr = ip.IP.String()
		}
	}
	// A node restarted at a new address (a container's new IP) takes its
	// name back from its DEAD old self after this long; memberlist's
	// default (never) would leave it out of gossip for good after a
	// crash. A graceful stop leaves (LEFT), which is reclaimable at once.
	if mc.DeadNodeReclaimTime == 0 {
		mc.DeadNodeReclaimTime = 10 * time.Second
	}
	if len(c.Gossip.Key) > 0 {
		mc.SecretKey = append([]byte(nil), c.Gossip.Key...)
	}
	return mc, nil
}

// GossipAddr is the host:port this node's memberlist advertises, or "" when
// gossip is off.
func (n *Node) GossipAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.localAddr()
}

// JoinGossip joins the gossip pool through any of addrs, retrying with
// backoff until one answers or ctx ends.
func (n *Node) JoinGossip(ctx context.Context, addrs []string) error {
	if n.gossip == nil {
		return fmt.Errorf("join gossip: %w: gossip is disabled", ErrInvalidConfig)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("join gossip: %w: no addresses", ErrInvalidConfig)
	}
	b := newBackoff(joinBackoffMin, joinBackoffMax)
	for {
		if n.closed.Load() {
			return fmt.Errorf("join gossip: %w", ErrShutdown)
		}
		k, err := n.gossip.ml.Join(addrs)
		if err == nil || k > 0 {
			n.log.Info("joined gossip", "contacted", k)
			return nil
		}
		if werr := b.wait(ctx); werr != nil {
			return fmt.Errorf("join gossip via %v: %w (last: %v)", addrs, werr, err)
		}
	}
}

// SetHealthy sets the health bit this node advertises (the data plane's
// readiness: its HSM works, it has caught up). Clients route around
// unhealthy nodes; autopilot does not use it, since Raft still works.
func (n *Node) SetHealthy(healthy bool) {
	if n.gossip != nil {
		n.gossip.setLocal(func(m *Meta) { m.Healthy = healthy })
	}
}

// setLocal edits the local metadata and asks the gossip loop to advertise
// it (memberlist's UpdateNode blocks, so callers never run it).
func (g *gossip) setLocal(edit func(*Meta)) {
	g.mu.Lock()
	before := g.local
	edit(&g.local)
	same := before == g.local
	g.mu.Unlock()
	if !same {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
}

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := g.local.Encode()
	if err != nil || len(b) > limit {
		return nil // Encode was checked at start; fields only shrink or flip
	}
	return b
}

func (g *gossip) NotifyMsg([]byte)                 {}
func (g *gossip) GetBroadcasts(int, int) [][]byte  { return nil }
func (g *gossip) LocalState(bool) []byte           { return nil }
func (g *gossip) MergeRemoteState([]byte, bool)    {}
func (g *gossip) NotifyJoin(nd *memberlist.Node)   { g.observe(nd, true) }
func (g *gossip) NotifyUpdate(nd *memberlist.Node) { g.observe(nd, true) }
func (g *gossip) NotifyLeave(nd *memberlist.Node)  { g.observe(nd, false) }

var _ memberlist.Delegate = (*gossip)(nil)
var _ memberlist.EventDelegate = (*gossip)(nil)

// observe records a memberlist event. NotifyLeave does not say dead or
// left; a member sets Leaving in its metadata before a graceful leave.
func (g *gossip) observe(nd *memberlist.Node, alive bool) {
	m, err := DecodeMeta(nd.Meta)
	if err != nil {
		g.log.Warn("ignoring gossip member with bad metadata", "name", nd.Name, "error", err.Error())
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.peers[m.ID]
	if !ok {
		p = &peer{status: StatusUnknown}
		g.peers[m.ID] = p
	}
	p.meta, p.addr = m, nd.Address()
	next := StatusAlive
	switch {
	case !alive && m.Leaving:
		next = StatusLeft
	case !alive:
		next = StatusDead
	}
	if next != p.status {
		g.log.Info("gossip member status", "id", m.ID, "region", m.Region, "status", next.String())
		p.status, p.since = next, now
		if next == StatusAlive {
			p.aliveSince = now
		}
	}
}

// snapshot copies the peer table.
func (g *gossip) snapshot() map[string]peer {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]peer, len(g.peers))
	for id, p := range g.peers {
		out[id] = *p
	}
	return out
}

// forget drops a peer that is gone from both gossip and Raft.
func (g *gossip) forget(id string) {
	g.mu.Lock()
	delete(g.peers, id)
	g.mu.Unlock()
}

// aliveAddrs lists the gossip addresses of live members, self included.
// It reads the peer table, not ml.Members(): that returns memberlist's own
// node structs, which its packet handler rewrites on every alive message
// (a data race -race reports when joins and restarts overlap).
func (g *gossip) aliveAddrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, p := range g.peers {
		if p.status == StatusAlive && p.addr != "" {
			out = append(out, p.addr)
		}
	}
	return out
}

// localAddr is this node's advertised gossip address, as memberlist
// reported it when it created the local node (see aliveAddrs for why
// LocalNode() is not read later).
func (g *gossip) localAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.peers[g.local.ID]; ok {
		return p.addr
	}
	return "" // not reached: Create reports the local node synchronously
}

// leave announces a graceful departure, then stops memberlist.
func (g *gossip) leave(timeout time.Duration) error {
	g.setLocal(func(m *Meta) { m.Leaving = true })
	if err := g.ml.UpdateNode(timeout); err != nil {
		g.log.Debug("advertise leaving", "error", err.Error())
	}
	if err := g.ml.Leave(timeout); err != nil {
		g.log.Debug("gossip leave", "error", err.Error())
	}
	return g.ml.Shutdown()
}

// memberlistLog maps memberlist's "[LEVEL] memberlist: ..." lines to slog;
// quiet, if set, picks the warnings and errors that are expected effects
// of a deliberate stop, logged at debug (lognoise.go).
type memberlistLog struct {
	l     *slog.Logger
	quiet func(line string) bool
}

func (w memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	lvl := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			lvl, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	if lvl >= slog.LevelWarn && w.quiet != nil && w.quiet(line) {
		lvl = slog.LevelDebug
	}
	w.l.Log(context.Background(), lvl, line)
	return len(p), nil
}
