package netsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

var (
	// ErrPartitioned is wrapped by a dial that a fault kept from reaching
	// its address until the dial's deadline (or the Sim's dial timeout).
	ErrPartitioned = errors.New("netsim: address unreachable across a partition")

	// ErrReset is what a held connection's reads and writes return once the
	// fault that held it heals under ResetOnHeal. It matches
	// syscall.ECONNRESET with errors.Is, like a real reset.
	ErrReset = fmt.Errorf("netsim: connection reset after a partition: %w", syscall.ECONNRESET)
)

// HealPolicy says what happens to a connection that a fault held once
// the fault heals.
type HealPolicy int

const (
	// ResetOnHeal resets every connection a fault cut, either way, at any
	// time during the fault: both ends see ECONNRESET and the data held is
	// lost. It is
	// what a partition longer than TCP's retransmission patience does, and
	// it exercises the reconnect paths of Raft and gRPC. The default.
	ResetOnHeal HealPolicy = iota
	// ResumeOnHeal delivers the held data after the heal, late but in
	// order, as TCP does when a short partition ends before it gives up:
	// peers then see stale messages arrive after newer state exists.
	ResumeOnHeal
)

// faults is the Sim's fault state, guarded by Sim.mu.
type faults struct {
	blocked     map[[2]string]bool // directed (from region, to region)
	isolated    map[string]bool    // node names
	dialTimeout time.Duration
	policy      HealPolicy
	changed     chan struct{} // closed and replaced on every change
	conns       map[*delayConn]struct{}
}

func newFaults() faults {
	return faults{blocked: map[[2]string]bool{}, isolated: map[string]bool{},
		changed: make(chan struct{}), conns: map[*delayConn]struct{}{}}
}

// cut reports whether traffic from src to dst is dropped (held).
func (f *faults) cut(src, dst place) bool {
	if src.node != "" && src.node == dst.node {
		return false // a node always reaches itself
	}
	if src.region != dst.region && f.blocked[[2]string{src.region, dst.region}] {
		return true
	}
	return (src.node != "" && f.isolated[src.node]) || (dst.node != "" && f.isolated[dst.node])
}

// Partition cuts regions a and b apart, both ways: new dials between them
// wait (see SetDialTimeout) and open connections hold their data. Other
// regions still reach both. a == b is ignored (use Isolate for nodes).
func (s *Sim) Partition(a, b string) {
	s.update(func(f *faults) {
		if a != b {
			f.blocked[[2]string{a, b}], f.blocked[[2]string{b, a}] = true, true
		}
	})
}

// Block drops traffic from region from to region to while the reverse
// flows. netsim models lost messages, not a packet filter: a node in to
// can still dial from and its bytes arrive, but the replies are held; a
// node in from cannot dial to. (With iptables, one-way drops also stop
// TCP handshakes and acknowledgements, so TCP notices both ways.)
func (s *Sim) Block(from, to string) {
	s.update(func(f *faults) {
		if from != to {
			f.blocked[[2]string{from, to}] = true
		}
	})
}

// Heal removes the partition or blocks between regions a and b, both
// directions.
func (s *Sim) Heal(a, b string) {
	s.update(func(f *faults) {
		delete(f.blocked, [2]string{a, b})
		delete(f.blocked, [2]string{b, a})
	})
}

// Isolate cuts node off from every other place, both ways, including
// nodes of its own region. The node is known by the addresses its Host
// registered (Host.Listen, Host.Register) and by the Host's dials.
func (s *Sim) Isolate(node string) {
	s.update(func(f *faults) {
		if node != "" {
			f.isolated[node] = true
		}
	})
}

// Reconnect undoes Isolate(node); region faults still apply to it.
func (s *Sim) Reconnect(node string) {
	s.update(func(f *faults) { delete(f.isolated, node) })
}

// HealAll removes every partition, block and isolation.
func (s *Sim) HealAll() {
	s.update(func(f *faults) {
		clear(f.blocked)
		clear(f.isolated)
	})
}

// SetDialTimeout sets how long a dial across a fault waits before failing
// with ErrPartitioned. 0, the default, waits until the fault heals (the
// dial then proceeds) or the dial's own deadline, as a connect does when
// a partition drops its SYNs; a short value mimics a rejecting firewall
// or an ICMP unreachable, which makes gRPC fail fast with Unavailable
// instead of waiting in CONNECTING.
func (s *Sim) SetDialTimeout(d time.Duration) {
	s.update(func(f *faults) { f.dialTimeout = max(d, 0) })
}

// SetHealPolicy chooses what a heal does to held connections.
func (s *Sim) SetHealPolicy(p HealPolicy) {
	s.update(func(f *faults) { f.policy = p })
}

// Cut reports whether traffic from region from to region to is dropped.
func (s *Sim) Cut(from, to string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.faults.cut(place{region: from}, place{region: to})
}

// update applies fn to the faults, resets the connections the change
// healed (under ResetOnHeal) and wakes everything waiting on a fault.
func (s *Sim) update(fn func(*faults)) {
	s.mu.Lock()
	f := &s.faults
	fn(f)
	var reset []*delayConn
	for c := range f.conns {
		held := f.cut(c.src, c.dst) || f.cut(c.dst, c.src)
		if held {
			c.wasHeld = true
		} else if c.wasHeld && f.policy == ResetOnHeal {
			// Doomed before anyone wakes: held data must not slip
			// through between the heal and the reset.
			c.doomed = true
			reset = append(reset, c)
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
	s.mu.Unlock()
	for _, c := range reset {
		c.reset()
	}
}

// state returns whether src -> dst is cut and a channel closed on the
// next fault change, read together so no change is missed.
func (s *Sim) state(src, dst place) (bool, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.faults.cut(src, dst), s.faults.changed
}

// connState is state for src -> dst on c, plus whether a heal is about to
// reset c.
func (s *Sim) connState(c *delayConn, src, dst place) (cut, doomed bool, changed <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.faults.cut(src, dst), c.doomed, s.faults.changed
}

// track registers c so that heals can reset it; it notes whether c starts
// held (a one-way block lets the dial through but holds the replies).
func (s *Sim) track(c *delayConn) {
	s.mu.Lock()
	c.wasHeld = s.faults.cut(c.src, c.dst) || s.faults.cut(c.dst, c.src)
	s.faults.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Sim) untrack(c *delayConn) {
	s.mu.Lock()
	delete(s.faults.conns, c)
	s.mu.Unlock()
}

// waitReachable blocks while src -> dst is cut: until a heal (nil), the
// dial timeout or ctx's end.
func (s *Sim) waitReachable(ctx context.Context, src, dst place) error {
	s.mu.RLock()
	timeout := s.faults.dialTimeout
	s.mu.RUnlock()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		cut, changed := s.state(src, dst)
		if !cut {
			return nil
		}
		select {
		case <-changed:
		case <-expired:
			return fmt.Errorf("%w: %w", ErrPartitioned, os.ErrDeadlineExceeded)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrPartitioned, ctx.Err())
		}
	}
}
