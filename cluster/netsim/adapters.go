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
// DialOptions.
func (s *Sim) DialOption(from string) grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return s.Dial(ctx, "tcp", addr, from)
	})
}

// StreamLayer is a raft.StreamLayer over TCP whose outgoing connections
// carry the simulated latency; use it as cluster.Config.StreamLayer.
type StreamLayer struct {
	net.Listener
	sim       *Sim
	region    string
	advertise net.Addr
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// StreamLayer listens on bindAddr for Raft traffic of a node in region and
// registers the bound address with s.
func (s *Sim) StreamLayer(bindAddr, region string) (*StreamLayer, error) {
	l, err := s.Listen("tcp", bindAddr, region)
	if err != nil {
		return nil, err
	}
	return &StreamLayer{Listener: l, sim: s, region: region, advertise: l.Addr()}, nil
}

// Dial implements raft.StreamLayer.
func (sl *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return sl.sim.Dial(ctx, "tcp", string(address), sl.region)
}

// Addr implements net.Listener with the advertised address.
func (sl *StreamLayer) Addr() net.Addr { return sl.advertise }
