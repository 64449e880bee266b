package client

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// node is one server and its pooled connection, kept for as long as the
// node is a member (or, without discovery, a configured address).
type node struct {
	addr   string
	conn   *grpc.ClientConn
	api    apiv1.KeyManagementClient
	health healthpb.HealthClient
	// downUntil and probeDownUntil (unix nanoseconds, 0 = up) are set by a
	// failed call and a failed probe; every call reads them, so they are
	// atomic rather than under router.mu. They are apart so that a passing
	// health check does not undo a call's verdict (a node that is serving
	// but lags the consistency token stays skipped for DownFor).
	downUntil      atomic.Int64
	probeDownUntil atomic.Int64

	// refs counts attempts using conn, with retiredBit set once the node
	// left the set: a retired node closes conn when the last of them
	// ends, not under them (a refresh that drops a node gossip briefly
	// thought dead, on a loaded machine, must not cancel the calls that
	// node is answering). One atomic, as every attempt touches it.
	refs atomic.Int64

	// Guarded by router.mu.
	member     *apiv1.Member // nil for a configured address not (yet) discovered
	rtt        time.Duration // EWMA of probe round trips; 0 until measured
	notServing bool          // the last health probe answered NOT_SERVING
}

func newNode(addr string, conn *grpc.ClientConn) *node {
	return &node{addr: addr, conn: conn, api: apiv1.NewKeyManagementClient(conn), health: healthpb.NewHealthClient(conn)}
}

// retiredBit marks node.refs of a node that left the set.
const retiredBit = int64(1) << 62

// acquire marks an attempt using conn; release ends it.
func (n *node) acquire() { n.refs.Add(1) }

func (n *node) release() {
	if n.refs.Add(-1) == retiredBit { // retired, and that was the last attempt
		_ = n.conn.Close()
	}
}

// retire marks n as out of the set and reports whether conn is idle (then
// the caller closes it); otherwise the last attempt using it closes it. It
// runs before the view without n is published, so a call that sees n
// gone on the view never finds it unretired. An attempt that starts later
// on a closed conn fails with Canceled and moves on (a second Close of an
// idle conn is harmless).
func (n *node) retire() (idle bool) {
	return n.refs.Or(retiredBit)&^retiredBit == 0
}

func (n *node) isRetired() bool { return n.refs.Load()&retiredBit != 0 }

func (n *node) down(now int64) bool {
	return n.downUntil.Load() > now || n.probeDownUntil.Load() > now
}

// up clears the down marks after a call succeeded there; loading first
// keeps the hot path free of writes to a shared cache line.
func (n *node) up() {
	if n.downUntil.Load() != 0 {
		n.downUntil.Store(0)
	}
	if n.probeDownUntil.Load() != 0 {
		n.probeDownUntil.Store(0)
	}
}

// route is a node as ranked in one view. Views are immutable, so a call
// reads one with a single atomic load and keeps it for all its attempts.
type route struct {
	n       *node
	id      string
	region  string
	healthy bool
}

type view struct{ routes []route }

// pick returns the best route not yet tried: up nodes first (in rank order,
// so healthy before unhealthy), then down ones as a last resort; -1 when
// every route was tried.
func (v *view) pick(tried []bool, now int64) int {
	fallback := -1
	for i := range v.routes {
		if tried != nil && tried[i] {
			continue
		}
		if !v.routes[i].n.down(now) {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

// router owns the node set and its ranking.
type router struct {
	region string
	dial   func(addr string) (*grpc.ClientConn, error)
	view   atomic.Pointer[view]

	mu     sync.Mutex
	nodes  map[string]*node // by API address
	closed bool
}

func newRouter(region string, dial func(string) (*grpc.ClientConn, error)) *router {
	r := &router{region: region, dial: dial, nodes: map[string]*node{}}
	r.view.Store(&view{})
	return r
}

func (r *router) current() *view { return r.view.Load() }

// setStatic makes the configured addresses the node set: seed (already
// connected) plus a lazy connection per other address.
func (r *router) setStatic(addrs []string, seed *node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[seed.addr] = seed
	for _, a := range addrs {
		if _, ok := r.nodes[a]; ok {
			continue
		}
		if conn, err := r.dial(a); err == nil {
			r.nodes[a] = newNode(a, conn)
		}
	}
	r.rebuildLocked()
}

// applyMembers makes ms (already filtered by usableMembers) the node set:
// known addresses keep their connection and RTT, new ones get a lazy
// connection, the rest are dropped and their connections closed once idle.
func (r *router) applyMembers(ms []*apiv1.Member) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	next := make(map[string]*node, len(ms))
	for _, m := range ms {
		n := r.nodes[m.GetApiAddr()]
		if n == nil {
			conn, err := r.dial(m.GetApiAddr())
			if err != nil {
				continue // an address gRPC cannot parse; the rest still route
			}
			n = newNode(m.GetApiAddr(), conn)
		}
		n.member = m
		next[n.addr] = n
	}
	var idle []*node
	if len(next) > 0 {
		for a, n := range r.nodes {
			if next[a] == nil && n.retire() {
				idle = append(idle, n)
			}
		}
		r.nodes = next
		r.rebuildLocked()
	}
	r.mu.Unlock()
	// Attempts in flight on the others finish first; calls still holding
	// an older view that start one later see Canceled and move on.
	for _, n := range idle {
		_ = n.conn.Close()
	}
}

// usableMembers keeps members that may be routed to: an API address, not
// DEAD or LEFT, the first entry per address.
func usableMembers(resp *apiv1.MembersResponse) []*apiv1.Member {
	var out []*apiv1.Member
	seen := map[string]bool{}
	for _, m := range resp.GetMembers() {
		switch m.GetStatus() {
		case apiv1.MemberStatus_MEMBER_STATUS_DEAD, apiv1.MemberStatus_MEMBER_STATUS_LEFT:
			continue
		}
		if a := m.GetApiAddr(); a != "" && !seen[a] {
			seen[a] = true
			out = append(out, m)
		}
	}
	return out
}

// observeProbe folds one probe into the node's RTT (EWMA, weight 0.3 on the
// new sample: one slow probe does not reorder nodes, a lasting shift does).
func (r *router) observeProbe(n *node, rtt time.Duration, notServing bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n.rtt == 0 {
		n.rtt = max(rtt, 1)
	} else {
		n.rtt = max((7*n.rtt+3*rtt)/10, 1)
	}
	n.notServing = notServing
}

func (r *router) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuildLocked()
}

// rebuildLocked ranks the nodes: healthy before unhealthy, the client's
// region before others, then lowest RTT (unmeasured last), then address so
// the order is stable.
func (r *router) rebuildLocked() {
	routes := make([]route, 0, len(r.nodes))
	rtts := make(map[*node]time.Duration, len(r.nodes))
	for _, n := range r.nodes {
		rt := route{n: n, healthy: !n.notServing}
		if m := n.member; m != nil {
			rt.id, rt.region = m.GetNodeId(), m.GetRegion()
			rt.healthy = rt.healthy && m.GetHealthy()
		}
		routes = append(routes, rt)
		rtts[n] = n.rtt
	}
	b2i := func(b bool) int {
		if b {
			return 0
		}
		return 1
	}
	slices.SortFunc(routes, func(a, b route) int {
		if c := cmp.Compare(b2i(a.healthy), b2i(b.healthy)); c != 0 {
			return c
		}
		if r.region != "" {
			if c := cmp.Compare(b2i(a.region == r.region), b2i(b.region == r.region)); c != 0 {
				return c
			}
		}
		ra, rb := rtts[a.n], rtts[b.n]
		if c := cmp.Compare(b2i(ra > 0), b2i(rb > 0)); c != 0 {
			return c
		}
		if c := cmp.Compare(ra, rb); c != 0 {
			return c
		}
		return cmp.Compare(a.n.addr, b.n.addr)
	})
	r.view.Store(&view{routes: routes})
}

// snapshot lists the nodes in rank order.
func (r *router) snapshot() []NodeStatus {
	v := r.current()
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NodeStatus, 0, len(v.routes))
	for _, rt := range v.routes {
		s := NodeStatus{Addr: rt.n.addr, ID: rt.id, Region: rt.region, Healthy: rt.healthy, Down: rt.n.down(now), RTT: rt.n.rtt}
		if m := rt.n.member; m != nil {
			s.Zone, s.Leader, s.Status = m.GetZone(), m.GetLeader(), m.GetStatus()
		}
		out = append(out, s)
	}
	return out
}

// all returns the current nodes, for probing.
func (r *router) all() []*node {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*node, 0, len(r.nodes))
	for _, n := range r.nodes {
		out = append(out, n)
	}
	return out
}

func (r *router) has(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[addr] != nil
}

func (r *router) close() error {
	r.mu.Lock()
	nodes := r.nodes
	r.nodes, r.closed = map[string]*node{}, true
	r.mu.Unlock()
	var first error
	for _, n := range nodes {
		if err := n.conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// NodeStatus is the client's view of one node, in rank order from Nodes.
type NodeStatus struct {
	// Addr is the node's API address; ID, Region and Zone come from
	// discovery and are empty for a configured address without it.
	Addr, ID, Region, Zone string
	// Leader and Status are as Members last reported them.
	Leader bool
	Status apiv1.MemberStatus
	// Healthy: the node reports itself ready and its last probe agreed.
	Healthy bool
	// Down: a recent call or probe failed; it is skipped until DownFor
	// passes or a probe succeeds.
	Down bool
	// RTT is the smoothed probe round trip (0 until measured).
	RTT time.Duration
}
