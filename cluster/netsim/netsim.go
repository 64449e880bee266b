// Package netsim simulates inter-region latency for node-to-node traffic,
// for the demo and for tests (the kernels we run on have no netem). A Sim
// holds a latency matrix by region pair and a map from addresses to
// regions; connections dialed through it are delayed by the one-way
// latency in each direction, so a round trip costs twice the one-way
// setting. Settings may change at runtime: each chunk of data samples the
// matrix when it is written or received.
//
// Only the dialing side wraps its connection (it delays both what it
// writes and what it reads), because only the dialer knows the far end's
// address and so its region; accepted connections are left alone.
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

// Sim is a latency matrix plus an address-to-region map. The zero value is
// not usable; call New. A Sim is safe for concurrent use.
type Sim struct {
	mu       sync.RWMutex
	inter    Latency // between any two different regions without a pair
	pairs    map[[2]string]Latency
	regions  map[string]string // address -> region
	resolver func(addr string) (string, bool)
}

// New returns a Sim with no latency anywhere.
func New() *Sim {
	return &Sim{pairs: map[[2]string]Latency{}, regions: map[string]string{}}
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

// Register records that addr (host:port) is in region.
func (s *Sim) Register(addr, region string) {
	s.mu.Lock()
	s.regions[addr] = region
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
	s.mu.RLock()
	r, ok := s.regions[addr]
	f := s.resolver
	s.mu.RUnlock()
	if ok || f == nil {
		return r, ok
	}
	return f(addr)
}

// Wrap delays conn's traffic by the latency between regions from and to,
// sampled per chunk so runtime changes apply to open connections.
func (s *Sim) Wrap(conn net.Conn, from, to string) net.Conn {
	return newDelayConn(conn, func() time.Duration { return s.Latency(from, to).sample() })
}

// Dial connects to addr from region from, delaying the connection if the
// far end's region is known.
func (s *Sim) Dial(ctx context.Context, network, addr, from string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	to, ok := s.RegionOf(addr)
	if !ok {
		return conn, nil
	}
	return s.Wrap(conn, from, to), nil
}

// Listen listens on addr and registers the bound address as in region.
func (s *Sim) Listen(network, addr, region string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	s.Register(l.Addr().String(), region)
	return l, nil
}
