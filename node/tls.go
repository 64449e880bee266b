package node

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/identity"
)

// openTLS loads the node's TLS material into the one identity.Source that
// every server and dialer of the node reads at each handshake, so a reload
// reaches all of them. The certificate must be a node certificate naming
// this node: peers admit only nodes to the cluster plane and accept a join
// only from the node its certificate names, so any other certificate
// would fail far from its cause (a refused join, a silent Raft peer).
func openTLS(cfg Config, log *slog.Logger) (*identity.Source, error) {
	src, err := identity.NewSource(identity.Config{
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, CAFile: cfg.TLS.CAFile,
		TrustDomain: cfg.TLS.TrustDomain, Logger: log.With("component", "tls"),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: TLS: %w", ErrConfig, err)
	}
	self, _ := src.Identity()
	td := src.TrustDomain()
	switch {
	case !self.IsNodeOf(td):
		return nil, fmt.Errorf("%w: TLS: --tls-cert %s names %s, not a node of trust domain %s: a node needs a node certificate (meridian tls cert create --node %s)",
			ErrConfig, cfg.TLS.CertFile, self, td, cfg.NodeID)
	case self.Name != cfg.NodeID:
		return nil, fmt.Errorf("%w: TLS: --tls-cert %s names node %s, but this node's id is %s: its peers would refuse it",
			ErrConfig, cfg.TLS.CertFile, self.Name, cfg.NodeID)
	}
	return src, nil
}

// setClusterTLS puts the node's TLS on every node-to-node path of the
// cluster: gRPC dials (forwarding, joins, status polls, domain-key calls)
// with mutual TLS that accepts only nodes of the trust domain, Raft over
// the same mutual TLS, and the join's check of who is calling.
func setClusterTLS(c *cluster.Config, src *identity.Source) error {
	policy := identity.ClientPolicy{Plane: identity.ClusterPlane}
	creds, err := src.ClientCredentials(policy)
	if err != nil {
		return fmt.Errorf("%w: TLS: %w", ErrConfig, err)
	}
	// Replaces the default's insecure credentials; Start may add a dialer
	// (the Sim's), never other credentials.
	c.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	server, err := src.ServerConfig(identity.ClusterPlane)
	if err != nil {
		return fmt.Errorf("%w: TLS: %w", ErrConfig, err)
	}
	client, err := src.ClientConfig(policy)
	if err != nil {
		return fmt.Errorf("%w: TLS: %w", ErrConfig, err)
	}
	c.RaftTLS = cluster.RaftTLS{Server: server, Client: client}
	c.PeerNodeID = func(ctx context.Context) (string, error) {
		p, err := identity.FromPeer(ctx)
		if err != nil {
			return "", err
		}
		// The cluster plane's handshake admits only nodes of the trust
		// domain; checked again so that a server built without that
		// policy can never let a client's name stand for a node id.
		if !p.IsNodeOf(src.TrustDomain()) {
			return "", fmt.Errorf("%w: the caller is %s", identity.ErrNotNode, p)
		}
		return p.Name, nil
	}
	return nil
}

// watchTLS reloads the TLS files when they change, for the node's life.
// Failing to watch is not fatal: the material loaded at start serves,
// and SIGHUP (ReloadOn) still reloads.
func (n *Node) watchTLS() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	if err := n.tls.Watch(ctx); err != nil {
		n.log.Warn("not watching the TLS files; send SIGHUP to reload them", "err", err)
	}
}

// TLS is the node's TLS source (nil without TLS): what `meridian server`
// reloads on SIGHUP, and where certificate expiry and reload counts are
// read.
func (n *Node) TLS() *identity.Source { return n.tls }
