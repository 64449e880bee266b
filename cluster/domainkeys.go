package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/meridiankms/meridian/cluster/clusterpb"
)

// DomainKeyHolder is this node's HSM as the domain-key peer calls need it.
// cluster cannot import hsm (DESIGN.md), so the node's wiring adapts its
// HSM: the DK versions it holds, a fresh transport public key (PKIX DER),
// every DK version wrapped to a transport key (an hsm DomainKeyBundle in
// its binary encoding), and the import of such a bundle. Keys and bundles
// are opaque bytes here and are never logged.
//
// Its errors reach the member that called, and through it an operator, so
// the wiring returns errors that carry a gRPC status with a caller-safe
// message (the client API's error mapping); any other error is answered
// Internal with no detail, the detail only logged here.
type DomainKeyHolder interface {
	DomainKeyVersions(ctx context.Context) ([]uint32, error)
	TransportPublicKey(ctx context.Context) ([]byte, error)
	ExportDomainKeys(ctx context.Context, transportPub []byte) ([]byte, error)
	ImportDomainKeys(ctx context.Context, bundle []byte) error
}

// DomainKeySync is what a sync did on one node.
type DomainKeySync struct {
	NodeID   string
	Imported []uint32 // DK versions it imported; empty when it held them all
	Versions []uint32 // DK versions its HSM holds afterwards, ascending
}

// domainKeysServer serves clusterpb.DomainKeys on the cluster plane.
type domainKeysServer struct {
	clusterpb.UnimplementedDomainKeysServer
	n *Node
}

func registerDomainKeys(s grpc.ServiceRegistrar, n *Node) {
	clusterpb.RegisterDomainKeysServer(s, &domainKeysServer{n: n})
}

func (s *domainKeysServer) Versions(ctx context.Context, _ *clusterpb.DomainKeyVersionsRequest) (*clusterpb.DomainKeyVersionsResponse, error) {
	h, err := s.n.holder()
	if err != nil {
		return nil, err
	}
	vs, err := h.DomainKeyVersions(ctx)
	if err != nil {
		return nil, s.n.holderStatus("list domain key versions", err)
	}
	return &clusterpb.DomainKeyVersionsResponse{NodeId: s.n.cfg.NodeID, Versions: vs}, nil
}

// Export wraps this node's DKs to the caller's transport key. Only a node
// reaches the cluster plane (mutual TLS will prove which one); the HSM
// checks the key (RSA, 3072..8192 bits).
func (s *domainKeysServer) Export(ctx context.Context, req *clusterpb.ExportDomainKeysRequest) (*clusterpb.ExportDomainKeysResponse, error) {
	h, err := s.n.holder()
	if err != nil {
		return nil, err
	}
	pub := req.GetTransportPublicKey()
	if len(pub) == 0 || len(pub) > maxTransportKeySize {
		return nil, status.Errorf(codes.InvalidArgument, "export domain keys: %v: transport public key is %d bytes, want 1..%d",
			ErrInvalidTransportKey, len(pub), maxTransportKeySize)
	}
	b, err := h.ExportDomainKeys(ctx, pub)
	if err != nil {
		return nil, s.n.holderStatus("export domain keys", err)
	}
	s.n.log.Info("exported domain keys to a member's transport key", "peer", peerAddr(ctx),
		"transport_key_bytes", len(pub), "bundle_bytes", len(b))
	return &clusterpb.ExportDomainKeysResponse{Bundle: b}, nil
}

func (s *domainKeysServer) Sync(ctx context.Context, req *clusterpb.SyncDomainKeysRequest) (*clusterpb.SyncDomainKeysResponse, error) {
	res, err := s.n.SyncDomainKeysFrom(ctx, req.GetSourceNodeId())
	if err != nil {
		return nil, err
	}
	return &clusterpb.SyncDomainKeysResponse{NodeId: res.NodeID, ImportedVersions: res.Imported, Versions: res.Versions}, nil
}

// ErrNoDomainKeyHolder means this node was built without a
// Config.DomainKeys: it cannot take part in domain-key peer calls.
var ErrNoDomainKeyHolder = errors.New("this node serves no domain-key calls (no HSM holder configured)")

func (n *Node) holder() (DomainKeyHolder, error) {
	if n.closed.Load() {
		return nil, status.Error(codes.Unavailable, ErrShutdown.Error())
	}
	if n.cfg.DomainKeys == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s: %v", n.cfg.NodeID, ErrNoDomainKeyHolder)
	}
	return n.cfg.DomainKeys, nil
}

// holderStatus passes on a holder error that carries a status (the
// wiring's caller-safe mapping); anything else is logged and answered
// Internal without its text.
func (n *Node) holderStatus(op string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", op)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", op)
	}
	n.log.Error("domain-key call failed", "op", op, "error", err.Error())
	return status.Errorf(codes.Internal, "%s: internal error on node %s; see its log", op, n.cfg.NodeID)
}

// SyncDomainKeysFrom imports into this node's HSM the DK versions it lacks
// from member sourceID, over the cluster plane: it asks the source which
// versions it holds, and only when some are missing makes a transport key
// in its HSM, has the source export its DKs wrapped to it, and imports the
// bundle. The source must be a live member other than this node. Every
// error carries a gRPC status whose message is safe to show an operator: a
// refusal of this node's, or a member's own (already mapped) answer.
func (n *Node) SyncDomainKeysFrom(ctx context.Context, sourceID string) (DomainKeySync, error) {
	h, err := n.holder()
	if err != nil {
		return DomainKeySync{}, err
	}
	src, err := n.member(ctx, sourceID)
	if err != nil {
		return DomainKeySync{}, err
	}
	if src.ID == n.cfg.NodeID {
		return DomainKeySync{}, status.Errorf(codes.InvalidArgument, "sync domain keys: source %s is this node itself", sourceID)
	}
	if src.Status == StatusDead || src.Status == StatusLeft {
		return DomainKeySync{}, status.Errorf(codes.FailedPrecondition, "sync domain keys: source %s is %s", sourceID, src.Status)
	}
	before, err := h.DomainKeyVersions(ctx)
	if err != nil {
		return DomainKeySync{}, n.holderStatus("sync domain keys: list this node's versions", err)
	}
	client, err := n.domainKeysClient(src)
	if err != nil {
		return DomainKeySync{}, err
	}
	where := fmt.Sprintf("source %s (%s)", src.ID, src.ClusterAddr)
	theirs, err := client.Versions(ctx, &clusterpb.DomainKeyVersionsRequest{})
	if err != nil {
		return DomainKeySync{}, remoteStatus("sync domain keys: ask "+where+" which versions it holds", err)
	}
	missing := without(theirs.GetVersions(), before)
	if len(missing) == 0 {
		return DomainKeySync{NodeID: n.cfg.NodeID, Versions: before}, nil
	}
	pub, err := h.TransportPublicKey(ctx)
	if err != nil {
		return DomainKeySync{}, n.holderStatus("sync domain keys: make a transport key", err)
	}
	resp, err := client.Export(ctx, &clusterpb.ExportDomainKeysRequest{TransportPublicKey: pub})
	if err != nil {
		return DomainKeySync{}, remoteStatus("sync domain keys: export from "+where, err)
	}
	if err := h.ImportDomainKeys(ctx, resp.GetBundle()); err != nil {
		return DomainKeySync{}, n.holderStatus("sync domain keys: import", err)
	}
	after, err := h.DomainKeyVersions(ctx)
	if err != nil {
		return DomainKeySync{}, n.holderStatus("sync domain keys: list this node's versions", err)
	}
	if still := without(missing, after); len(still) > 0 {
		n.log.Error("domain key versions still missing after an import", "source", src.ID, "missing", still)
		return DomainKeySync{}, status.Errorf(codes.Internal, "sync domain keys from %s: still lacking dk versions %v after the import", where, still)
	}
	imported := without(after, before)
	n.log.Info("imported domain key versions", "source", src.ID, "versions", imported)
	return DomainKeySync{NodeID: n.cfg.NodeID, Imported: imported, Versions: after}, nil
}

// PeerDomainKeyVersions asks member id, over the cluster plane, which DK
// versions its HSM holds. Errors carry a status, as SyncDomainKeysFrom's.
func (n *Node) PeerDomainKeyVersions(ctx context.Context, id string) ([]uint32, error) {
	m, err := n.member(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := n.domainKeysClient(m)
	if err != nil {
		return nil, err
	}
	resp, err := c.Versions(ctx, &clusterpb.DomainKeyVersionsRequest{})
	if err != nil {
		return nil, remoteStatus(fmt.Sprintf("ask %s (%s) which domain key versions it holds", id, m.ClusterAddr), err)
	}
	return resp.GetVersions(), nil
}

// SyncPeerDomainKeys asks member id, over the cluster plane, to import the
// DK versions it lacks from member sourceID (a rotation's distribution
// step, with this node as the source). The member's failure comes back as
// its own status.
func (n *Node) SyncPeerDomainKeys(ctx context.Context, id, sourceID string) (DomainKeySync, error) {
	m, err := n.member(ctx, id)
	if err != nil {
		return DomainKeySync{}, err
	}
	c, err := n.domainKeysClient(m)
	if err != nil {
		return DomainKeySync{}, err
	}
	resp, err := c.Sync(ctx, &clusterpb.SyncDomainKeysRequest{SourceNodeId: sourceID})
	if err != nil {
		return DomainKeySync{}, err
	}
	return DomainKeySync{NodeID: resp.GetNodeId(), Imported: resp.GetImportedVersions(), Versions: resp.GetVersions()}, nil
}

// member finds id in the membership view.
func (n *Node) member(ctx context.Context, id string) (Member, error) {
	if n.closed.Load() {
		return Member{}, status.Error(codes.Unavailable, ErrShutdown.Error())
	}
	ms, err := n.Members(ctx)
	if err != nil {
		return Member{}, status.Errorf(codes.Unavailable, "membership view: %v", err)
	}
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return Member{}, status.Errorf(codes.InvalidArgument, "node %q is not a member of this cluster", id)
}

func (n *Node) domainKeysClient(m Member) (clusterpb.DomainKeysClient, error) {
	if m.ClusterAddr == "" {
		return nil, status.Errorf(codes.Unavailable, "member %s has no cluster address in the membership view yet", m.ID)
	}
	conn, err := n.pool.get(m.ClusterAddr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial member %s at %s: %v", m.ID, m.ClusterAddr, err)
	}
	return clusterpb.NewDomainKeysClient(conn), nil
}

// remoteStatus names the call to another member that failed, keeping its
// status (code, message, details): the member's message was made safe by
// its own mapping.
func remoteStatus(what string, err error) error {
	p := status.Convert(err).Proto()
	p.Message = what + ": " + p.GetMessage()
	return status.FromProto(p).Err()
}

func peerAddr(ctx context.Context) string {
	if p, ok := grpcpeer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// without returns the elements of a not in b, in a's order.
func without(a, b []uint32) []uint32 {
	var out []uint32
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}
