package netsim

import (
	"context"
	"fmt"
	"net"
)

// Host is one node's attachment to a Sim: the addresses it listens on are
// registered as the node's, and its dials carry its identity, so Isolate
// can cut that node alone. In-process nodes share 127.0.0.1, so an
// address is the only thing that tells them apart on the far side, and
// the dialer's identity must travel with the dial.
type Host struct {
	sim   *Sim
	place place
}

// Host returns the attachment of node in region. node "" gives a dialer
// and listener known by region only (what Sim.Dial and Sim.Listen use):
// region faults apply to it, Isolate cannot name it.
func (s *Sim) Host(region, node string) *Host {
	return &Host{sim: s, place: place{region: region, node: node}}
}

// Region returns the host's region.
func (h *Host) Region() string { return h.place.region }

// Node returns the host's node name ("" for a region-only host).
func (h *Host) Node() string { return h.place.node }

// Register records addr (host:port) as this host's, for listeners made
// elsewhere (gossip, a server built by another package).
func (h *Host) Register(addr string) { h.sim.register(addr, h.place) }

// Listen listens on addr and registers the bound address as this host's.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	h.Register(l.Addr().String())
	return l, nil
}

// Dial connects to addr. If the far end's place is known the connection
// is delayed by the latency between the regions and held while a fault
// cuts either direction. While a fault cuts this host off from addr the
// dial waits: it proceeds if the fault heals first, and otherwise fails
// with ErrPartitioned at ctx's end or the Sim's dial timeout (see
// SetDialTimeout), like a connect whose SYNs are dropped.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	to, known := h.sim.placeOf(addr)
	if known {
		if err := h.sim.waitReachable(ctx, h.place, to); err != nil {
			return nil, fmt.Errorf("dial %s from %s: %w", addr, h, err)
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil || !known {
		return conn, err
	}
	return h.sim.wrap(conn, h.place, to), nil
}

// String names the host as region/node (or the region alone).
func (h *Host) String() string {
	if h.place.node == "" {
		return h.place.region
	}
	return h.place.region + "/" + h.place.node
}
