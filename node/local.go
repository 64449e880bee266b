package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/meridiankms/meridian/internal/wait"
)

// PinAddrs sets cfg's listen addresses (client API, cluster plane, Raft
// and, with gossip on, gossip) to those n listens on, port 0 resolved.
// Starting a node again with cfg listens where clients and peers knew n,
// as a restarted process with the same flags does; the in-process
// harnesses start every node on port 0 and pin its addresses, so no port
// is ever reserved and released (another process could take it between
// the release and the node's listen).
func (n *Node) PinAddrs(cfg *Config) {
	cfg.ClusterListener = nil
	cfg.APIAddr, cfg.ClusterAddr = n.apiAddr, n.clusterAddr
	cfg.RaftAddr = n.cluster.RaftAddr()
	if g := n.cluster.GossipAddr(); g != "" && cfg.GossipAddr != "" {
		cfg.GossipAddr = g
	}
}

// StartLocal is Start for a node inside a harness: it opens the cluster
// plane's listener on cfg.ClusterAddr itself and hands it to the node
// (listening, if set, learns its address before the node starts: a proxy
// in front of it), and while one of cfg's ports is still in use
// (EADDRINUSE: a restarted node's old sockets, or another process took the
// port meanwhile) it tries again every few milliseconds until ctx ends.
// cfg.ClusterListener must be nil.
func StartLocal(ctx context.Context, cfg Config, listening func(clusterAddr string)) (*Node, error) {
	if cfg.ClusterListener != nil {
		return nil, fmt.Errorf("%w: StartLocal opens the cluster listener itself", ErrConfig)
	}
	var n *Node
	err := wait.Until(ctx, 0, func() error {
		lis, err := net.Listen("tcp", cfg.ClusterAddr)
		if err == nil {
			if listening != nil {
				listening(lis.Addr().String())
			}
			c := cfg
			c.ClusterListener = lis
			n, err = Start(ctx, c) // Start closes lis when it fails
		}
		if err != nil && !AddrInUse(err) {
			return wait.Stop(err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.NodeID, err)
	}
	return n, nil
}

// AddrInUse reports whether err is a listen on a port that is taken.
func AddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
