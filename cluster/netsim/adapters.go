package netsim

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

// DialOption makes gRPC dial through s from region from (node-to-node
// forwarding, joins and status polls). Append it to cluster.Config's
// DialOptions. Host.DialOption does the same with a node identity.
func (s *Sim) DialOption(from string) grpc.DialOption {
	return s.Host(from, "").DialOption()
}

// DialOption makes gRPC dial through the Sim from this host.
func (h *Host) DialOption() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return h.Dial(ctx, "tcp", addr)
	})
}

// StreamLayer is a raft.StreamLayer over TCP whose outgoing connections
// carry the simulated latency and faults; use it as
// cluster.Config.StreamLayer.
//
// Close also cancels its dials in progress and closes the connections it
// dialed, as a process's exit would: otherwise a node closed while
// partitioned waits out raft's dial and I/O timeouts on held connections.
type StreamLayer struct {
	net.Listener
	host      *Host
	advertise net.Addr
	ctx       context.Context // ends on Close
	cancel    context.CancelFunc
	conns     *connSet
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// StreamLayer listens on bindAddr for Raft traffic of a node in region and
// registers the bound address with s (region only; see Host.StreamLayer).
func (s *Sim) StreamLayer(bindAddr, region string) (*StreamLayer, error) {
	return s.Host(region, "").StreamLayer(bindAddr)
}

// StreamLayer listens on bindAddr for this host's Raft traffic.
func (h *Host) StreamLayer(bindAddr string) (*StreamLayer, error) {
	l, err := h.Listen("tcp", bindAddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &StreamLayer{Listener: l, host: h, advertise: l.Addr(), ctx: ctx, cancel: cancel,
		conns: newConnSet()}, nil
}

// Dial implements raft.StreamLayer; timeout bounds a dial across a fault.
func (sl *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(sl.ctx, timeout)
	defer cancel()
	c, err := sl.host.Dial(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	return sl.conns.add(c)
}

// Close stops listening and ends every dial and connection of the layer.
// Closing it again is a no-op.
func (sl *StreamLayer) Close() error {
	sl.cancel()
	if !sl.conns.closeAll() {
		return nil
	}
	return sl.Listener.Close()
}

// Addr implements net.Listener with the advertised address.
func (sl *StreamLayer) Addr() net.Addr { return sl.advertise }
