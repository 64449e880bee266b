package netsim

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipTransport is a memberlist transport whose outgoing traffic goes
// through the Sim. It is memberlist's own NetTransport (real UDP and TCP
// sockets on the bound address, so a node keeps its gossip address across
// restarts and processes outside the Sim can still gossip with it) with
// the sending side filtered, as the Sim's connections are:
//
//   - a packet (UDP) to an address the Sim knows is dropped when a fault
//     cuts this host from it, at send or when due, and otherwise sent
//     after the one-way latency between the regions (jitter may reorder
//     packets, as UDP may); the send time is returned at once, as a
//     kernel's would be;
//   - a stream (TCP) is dialed with Host.Dial, so it waits across a fault,
//     is delayed both ways and is held or reset like any simulated
//     connection;
//   - what arrives is left alone: the sender applied the simulation.
//
// Only the sender can filter because only it knows both places. So one
// way blocks are exact for packets: Block(us, eu) drops us -> eu while
// eu -> us flows. Shutdown, like a process's exit, also ends dials in
// progress and the streams it dialed.
type GossipTransport struct {
	*memberlist.NetTransport
	host *Host
	addr string
	ctx  context.Context // ends on Shutdown
	stop context.CancelFunc

	mu     sync.RWMutex // write-held by Shutdown; read-held by delayed sends
	closed bool
	conns  *connSet
}

var _ memberlist.NodeAwareTransport = (*GossipTransport)(nil)

// GossipTransport listens for gossip on bindAddr (host:port; port 0 picks
// a free one, used for both UDP and TCP) and registers the bound address
// as this host's. logger receives the transport's own messages (nil
// discards). Its signature is cluster.GossipTransportFunc's, so a node
// sets GossipConfig.Transport = host.GossipTransport.
func (h *Host) GossipTransport(bindAddr string, logger *log.Logger) (memberlist.NodeAwareTransport, error) {
	t, err := h.listenGossip(bindAddr, logger)
	if err != nil {
		return nil, err // a nil *GossipTransport in the interface would not be nil
	}
	return t, nil
}

func (h *Host) listenGossip(bindAddr string, logger *log.Logger) (*GossipTransport, error) {
	host, p, err := net.SplitHostPort(bindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: %w", bindAddr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: port: %w", bindAddr, err)
	}
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	cfg := &memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: int(port), Logger: logger}
	nt, err := newNetTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for gossip on %s: %w", bindAddr, err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(nt.GetAutoBindPort()))
	h.Register(addr)
	ctx, stop := context.WithCancel(context.Background())
	return &GossipTransport{NetTransport: nt, host: h, addr: addr, ctx: ctx, stop: stop, conns: newConnSet()}, nil
}

// newNetTransport binds UDP and TCP on one port. With port 0 the kernel
// picks a TCP port that UDP may already hold, so it retries, as
// memberlist.Create does for its own transport.
func newNetTransport(cfg *memberlist.NetTransportConfig) (*memberlist.NetTransport, error) {
	tries := 1
	if cfg.BindPort == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(cfg); err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

// Addr is the bound gossip address (host:port), registered with the Sim.
func (t *GossipTransport) Addr() string { return t.addr }

// WriteTo implements memberlist.Transport.
func (t *GossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends b to a.Addr as the Sim allows: at once, later, or
// never (a silent drop, as across a blackhole).
func (t *GossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	sim, src := t.host.sim, t.host.place
	dst, known := sim.placeOf(a.Addr)
	if !known {
		return t.NetTransport.WriteToAddress(b, a)
	}
	if cut, _ := sim.state(src, dst); cut {
		return now, nil
	}
	delay := sim.Latency(src.region, dst.region).sample()
	if delay == 0 {
		return t.NetTransport.WriteToAddress(b, a)
	}
	buf := append([]byte(nil), b...) // memberlist may reuse b once we return
	time.AfterFunc(delay, func() { t.deliver(buf, a, dst) })
	return now, nil
}

// deliver sends a delayed packet unless the transport has shut down or a
// fault began while it was in flight.
func (t *GossipTransport) deliver(b []byte, a memberlist.Address, dst place) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	if cut, _ := t.host.sim.state(t.host.place, dst); cut {
		return
	}
	// A lost UDP packet is nobody's error; memberlist's probes notice.
	_, _ = t.NetTransport.WriteToAddress(b, a)
}

// DialTimeout implements memberlist.Transport.
func (t *GossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a stream through the Sim (see Host.Dial):
// across a fault it waits up to timeout (or the Sim's dial timeout) and
// fails with ErrPartitioned.
func (t *GossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	c, err := t.host.Dial(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return t.conns.add(c)
}

// Shutdown stops listening, drops packets still in flight and ends dials
// in progress and dialed streams. It is safe to call more than once.
func (t *GossipTransport) Shutdown() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.stop()
	t.conns.closeAll()
	return t.NetTransport.Shutdown()
}

// connSet tracks the connections a layer dialed so that closing the layer
// closes them, as a process's exit closes its sockets.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func newConnSet() *connSet { return &connSet{conns: map[net.Conn]struct{}{}} }

// add tracks c and returns it wrapped to untrack itself on Close; after
// closeAll it closes c and fails with net.ErrClosed.
func (s *connSet) add(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	s.conns[c] = struct{}{}
	return &trackedConn{Conn: c, set: s}, nil
}

// closeAll closes every tracked connection; later adds fail. It reports
// whether this call did it (false when already closed).
func (s *connSet) closeAll() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
	return true
}

// trackedConn forgets itself in its set on Close.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.conns, c.Conn)
	c.set.mu.Unlock()
	return c.Conn.Close()
}
