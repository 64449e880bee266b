// Package netsim simulates the network between regions for node-to-node
// traffic, for the demo and for tests: the kernels we run on have no netem,
// and in-process nodes share one network namespace, so latency and faults
// are injected in the connections themselves.
//
// A Sim holds a latency matrix by region pair, a map from addresses to
// places (region, and optionally node), and a set of faults: region
// partitions, one-way region blocks and isolated nodes (faults.go).
// Connections dialed through it are delayed by the one-way latency in each
// direction, so a round trip costs twice the one-way setting, and hold
// their data while a fault separates the two ends. Settings may change at
// runtime: each chunk of data samples the matrix when it is written or
// received, and checks the faults when it is due.
//
// Only the dialing side wraps its connection (it delays and holds both what
// it writes and what it reads), because only the dialer knows the far
// end's address and so its place; accepted connections are left alone.
// Traffic from dialers outside the Sim (test clients) is never affected.
package netsim

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Latency is a one-way delay with uniform jitter in [-Jitter, +Jitter].
type Latency struct {
	OneWay, Jitter time.Duration
}

// sample draws one delay, never negative.
func (l Latency) sample() time.Duration {
	d := l.OneWay
	if l.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*l.Jitter)+1)) - l.Jitter
	}
	return max(d, 0)
}

// place is where an address lives: its region and, for addresses a Host
// registered, its node ("" when only the region is known).
type place struct{ region, node string }

// Sim is a latency matrix, an address-to-place map and a fault set. The
// zero value is not usable; call New. A Sim is safe for concurrent use.
type Sim struct {
	mu       sync.RWMutex
	inter    Latency // between any two different regions without a pair
	pairs    map[[2]string]Latency
	places   map[string]place // address -> place
	resolver func(addr string) (string, bool)
	faults   faults
}

// New returns a Sim with no latency and no faults anywhere.
func New() *Sim {
	return &Sim{pairs: map[[2]string]Latency{}, places: map[string]place{}, faults: newFaults()}
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// SetDefault sets the latency between any two different regions that have
// no pair-specific setting.
func (s *Sim) SetDefault(oneWay, jitter time.Duration) {
	s.mu.Lock()
	s.inter = Latency{oneWay, jitter}
	s.mu.Unlock()
}

// SetLatency sets the one-way latency between regions a and b, both ways
// (a == b sets the latency inside a region, zero unless set).
func (s *Sim) SetLatency(a, b string, oneWay, jitter time.Duration) {
	s.mu.Lock()
	s.pairs[pairKey(a, b)] = Latency{oneWay, jitter}
	s.mu.Unlock()
}

// Latency returns the current setting between regions a and b.
func (s *Sim) Latency(a, b string) Latency {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l, ok := s.pairs[pairKey(a, b)]; ok {
		return l
	}
	if a == b {
		return Latency{}
	}
	return s.inter
}

// Register records that addr (host:port) is in region, with no node
// identity (region faults apply to it, Isolate does not).
func (s *Sim) Register(addr, region string) { s.register(addr, place{region: region}) }

func (s *Sim) register(addr string, p place) {
	s.mu.Lock()
	s.places[addr] = p
	s.mu.Unlock()
}

// SetResolver sets a fallback for addresses not registered, for instance
// a lookup in the cluster's membership view.
func (s *Sim) SetResolver(f func(addr string) (region string, ok bool)) {
	s.mu.Lock()
	s.resolver = f
	s.mu.Unlock()
}

// RegionOf returns the region of addr, if known.
func (s *Sim) RegionOf(addr string) (string, bool) {
	p, ok := s.placeOf(addr)
	return p.region, ok
}

// NodeOf returns the node that registered addr (through a Host), if any:
// Isolate(NodeOf(addr)) cuts off whatever node listens there.
func (s *Sim) NodeOf(addr string) (string, bool) {
	p, ok := s.placeOf(addr)
	return p.node, ok && p.node != ""
}

func (s *Sim) placeOf(addr string) (place, bool) {
	s.mu.RLock()
	p, ok := s.places[addr]
	f := s.resolver
	s.mu.RUnlock()
	if ok || f == nil {
		return p, ok
	}
	r, ok := f(addr)
	return place{region: r}, ok
}

// Wrap delays conn's traffic by the latency between regions from and to,
// sampled per chunk so runtime changes apply to open connections. Region
// faults between from and to hold its data as for a dialed connection.
func (s *Sim) Wrap(conn net.Conn, from, to string) net.Conn {
	return s.wrap(conn, place{region: from}, place{region: to})
}

// Dial connects to addr from region from (a dialer with no node identity),
// delaying and holding the connection's data if the far end's region is
// known. See Host.Dial.
func (s *Sim) Dial(ctx context.Context, network, addr, from string) (net.Conn, error) {
	return s.Host(from, "").Dial(ctx, network, addr)
}

// Listen listens on addr and registers the bound address as in region.
func (s *Sim) Listen(network, addr, region string) (net.Listener, error) {
	return s.Host(region, "").Listen(network, addr)
}
