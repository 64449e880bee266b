package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// forwardedKey marks a Join that a follower already forwarded once, so two
// nodes with stale leader views cannot bounce it between them.
const forwardedKey = "meridian-forwarded"

// rpcServer implements clusterpb.ClusterServer for a Node. It is a separate
// type because the Node's own Join and Apply have caller-friendly
// signatures that clash with the generated ones.
type rpcServer struct {
	clusterpb.UnimplementedClusterServer
	n *Node
}

func registerServer(s grpc.ServiceRegistrar, n *Node) {
	clusterpb.RegisterClusterServer(s, &rpcServer{n: n})
}

// Apply runs a forwarded command. Only the leader answers; anyone else says
// FailedPrecondition so the sender looks the leader up again.
func (s *rpcServer) Apply(ctx context.Context, req *clusterpb.ApplyRequest) (*clusterpb.ApplyResponse, error) {
	n := s.n
	if n.closed.Load() {
		return nil, status.Error(codes.Unavailable, ErrShutdown.Error())
	}
	cmd, err := decodeForwarded(req.GetCommand())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if !n.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, ErrNotLeader.Error())
	}
	res, err := n.applyLocal(ctx, req.GetCommand())
	if err != nil {
		return nil, rpcStatus(fmt.Sprintf("apply %s", cmd.GetType()), err)
	}
	b, err := proto.Marshal(res)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode result: %v", err)
	}
	return &clusterpb.ApplyResponse{Result: b}, nil
}

// decodeForwarded validates a forwarded log entry before it is proposed:
// an entry that will not decode, or that no node knows how to apply, would
// stop every node when applied.
func decodeForwarded(b []byte) (*fsmpb.Command, error) {
	cmd, err := fsm.DecodeCommand(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	if err := fsm.CheckCommand(cmd); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	return cmd, nil
}

// Join adds the caller to Raft on the leader, or forwards to the leader.
// A request carrying a transport public key is enrolled first (see
// Node.exportDomainKeys); the leader's reply, bundle included, passes back
// through a forwarding follower unchanged.
func (s *rpcServer) Join(ctx context.Context, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	n := s.n
	if n.closed.Load() {
		return nil, status.Error(codes.Unavailable, ErrShutdown.Error())
	}
	// A joiner built before the cluster plane sends no cluster address;
	// its API address serves the Cluster service (clusterAddrOf).
	if req.GetNodeId() == "" || req.GetRaftAddr() == "" || req.GetApiAddr() == "" {
		return nil, status.Error(codes.InvalidArgument, "join: node id, raft address and api address are required")
	}
	if l := len(req.GetTransportPublicKey()); l > maxTransportKeySize {
		return nil, status.Errorf(codes.InvalidArgument, "join %s: %v: %d bytes, at most %d", req.GetNodeId(), ErrInvalidTransportKey, l, maxTransportKeySize)
	}
	if err := n.authorizeJoin(ctx, req); err != nil {
		return nil, err
	}
	if n.IsLeader() {
		bundle, err := n.exportDomainKeys(ctx, req)
		if err != nil {
			return nil, rpcStatus("join "+req.GetNodeId(), err)
		}
		if n.cfg.autopilotOn() {
			// Autopilot promotes once the node has caught up and proved
			// stable; joining as a voter would count an empty log toward
			// quorum at once.
			req = proto.CloneOf(req)
			req.Voter = false
		}
		idx, err := n.addMember(ctx, req)
		if err != nil {
			return nil, rpcStatus("join "+req.GetNodeId(), err)
		}
		resp := &clusterpb.JoinResponse{Index: idx, LeaderId: n.cfg.NodeID, DomainKeyBundle: bundle}
		if n.gossip != nil {
			resp.GossipAddrs = n.gossip.aliveAddrs()
		}
		return resp, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.FailedPrecondition, ErrNotLeader.Error())
	}
	lid, addr := n.Leader()
	if lid == "" || addr == "" || lid == n.cfg.NodeID {
		return nil, status.Error(codes.Unavailable, ErrNoLeader.Error())
	}
	conn, err := n.pool.get(addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial leader %s: %v", addr, err)
	}
	fctx := metadata.AppendToOutgoingContext(ctx, forwardedKey, n.cfg.NodeID)
	return clusterpb.NewClusterClient(conn).Join(fctx, req)
}

// rpcStatus maps a local apply/membership error onto a gRPC status the
// remote side classifies (see classifyRPCErr).
func rpcStatus(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	var retry errRetry
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, ErrEnrolmentUnavailable):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, ErrInvalidTransportKey):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, ErrShutdown), errors.As(err, &retry):
		return status.Error(codes.Unavailable, msg)
	}
	return status.Error(codes.Internal, msg)
}

// Status reports this node's Raft progress (autopilot's caught-up check).
func (s *rpcServer) Status(context.Context, *clusterpb.StatusRequest) (*clusterpb.StatusResponse, error) {
	n := s.n
	if n.closed.Load() {
		return nil, status.Error(codes.Unavailable, ErrShutdown.Error())
	}
	return &clusterpb.StatusResponse{
		NodeId: n.cfg.NodeID, LastIndex: n.raft.LastIndex(), AppliedIndex: n.fsm.AppliedIndex(),
		Term: n.raft.CurrentTerm(), State: n.raft.State().String(),
	}, nil
}

// authorizeJoin checks who asks to join, from the connection (Config.PeerNodeID),
// never from the request: either the joining node itself, or a member
// forwarding its join, which made this check at the first hop. Without
// the check any holder of a cluster certificate could join under another
// node's id, and be handed the domain keys in its name.
func (n *Node) authorizeJoin(ctx context.Context, req *clusterpb.JoinRequest) error {
	if n.cfg.PeerNodeID == nil {
		return nil // plaintext (--insecure): nobody is authenticated
	}
	caller, err := n.cfg.PeerNodeID(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "join %q: %v", req.GetNodeId(), err)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		if by := md.Get(forwardedKey)[0]; by != caller {
			return status.Errorf(codes.PermissionDenied, "join %q: %v: forwarded as from node %q by node %s",
				req.GetNodeId(), ErrJoinIdentity, by, caller)
		}
		member, err := n.isServer(ctx, caller)
		if err != nil {
			return status.Errorf(codes.Unavailable, "join %q: check forwarder %s: %v", req.GetNodeId(), caller, err)
		}
		if !member {
			// Not PermissionDenied: an honest forwarder may have been
			// removed without knowing it, and the joiner should then try
			// another seed, as after any follower's stale leader view.
			return status.Errorf(codes.FailedPrecondition, "join %q: forwarded by node %s, which is not a member",
				req.GetNodeId(), caller)
		}
		return nil
	}
	if caller != req.GetNodeId() {
		return status.Errorf(codes.PermissionDenied, "join %q: %v: the caller's certificate names node %s",
			req.GetNodeId(), ErrJoinIdentity, caller)
	}
	return nil
}

// isServer reports whether id is in this node's latest Raft configuration.
func (n *Node) isServer(ctx context.Context, id string) (bool, error) {
	servers, err := n.Servers(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id }), nil
}
