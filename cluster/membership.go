package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Join pacing: a joining node usually waits for a seed to start or for the
// cluster to elect a leader, both of which take a while.
const (
	joinBackoffMin = 50 * time.Millisecond
	joinBackoffMax = 2 * time.Second
	joinRPCTimeout = 10 * time.Second
)

// maxTransportKeySize bounds the transport public key a join may carry:
// the PKIX DER of an RSA-8192 key, the largest any HSM backend accepts, is
// about 1.1 KB. Checked before the key reaches the exporter.
const maxTransportKeySize = 4096

// Join asks the cluster behind seeds (cluster-plane addresses of members:
// their --cluster-addr) to add this node, trying each seed in turn and retrying with backoff until one accepts or ctx ends. It
// is idempotent: joining when already a member (same address) changes
// nothing, and a member that comes back with a new Raft address is updated.
// A refusal no retry can change (InvalidArgument) ends it at once.
func (n *Node) Join(ctx context.Context, seeds []string) error {
	_, err := n.join(ctx, seeds, nil)
	return err
}

// JoinWithEnrolment is Join for a node whose HSM needs the cluster's domain
// keys: the request carries transportPub (the PKIX DER public key of this
// node's HSM transport key pair) and the leader, before adding the node,
// wraps its domain keys to that key inside its own HSM. It returns the
// leader's bundle (an hsm DomainKeyBundle's binary encoding) for this
// node's HSM to import. Retries as Join does; a retried join re-exports.
//
// A leader with no exporter ends the join at once with
// ErrEnrolmentUnavailable, a key the leader refuses with
// ErrInvalidTransportKey; in both cases the node was not added. A leader
// that adds the node without a bundle gives ErrNoDomainKeyBundle.
func (n *Node) JoinWithEnrolment(ctx context.Context, seeds []string, transportPub []byte) ([]byte, error) {
	if len(transportPub) == 0 || len(transportPub) > maxTransportKeySize {
		return nil, fmt.Errorf("join with enrolment: %w: %d bytes, want 1..%d", ErrInvalidTransportKey, len(transportPub), maxTransportKeySize)
	}
	return n.join(ctx, seeds, transportPub)
}

func (n *Node) join(ctx context.Context, seeds []string, transportPub []byte) ([]byte, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("join: %w: no seed addresses", ErrInvalidConfig)
	}
	req := &clusterpb.JoinRequest{
		NodeId:             n.cfg.NodeID,
		RaftAddr:           n.raftAddr,
		ApiAddr:            n.cfg.APIAddr,
		ClusterAddr:        n.cfg.ClusterAddr,
		Region:             n.cfg.Region,
		Zone:               n.cfg.Zone,
		Voter:              !n.cfg.NonVoter,
		GossipAddr:         n.GossipAddr(),
		TransportPublicKey: transportPub,
	}
	b := newBackoff(joinBackoffMin, joinBackoffMax)
	var lastErr error
	for {
		for _, seed := range seeds {
			if n.closed.Load() {
				return nil, fmt.Errorf("join: %w", ErrShutdown)
			}
			resp, err := n.joinVia(ctx, seed, req)
			if err == nil {
				return n.joined(ctx, seed, resp, transportPub != nil)
			}
			if perm := permanentJoinErr(err); perm != nil {
				return nil, fmt.Errorf("join via %s: %w", seed, perm)
			}
			lastErr = err
			n.log.Debug("join attempt failed", "seed", seed, "error", err.Error())
		}
		if err := b.wait(ctx); err != nil {
			return nil, fmt.Errorf("join via %v: %w (last: %v)", seeds, err, lastErr)
		}
	}
}

// joined finishes a successful join: gossip first, because a Raft member
// missing from gossip would look dead to autopilot, then the bundle check.
func (n *Node) joined(ctx context.Context, seed string, resp *clusterpb.JoinResponse, enrol bool) ([]byte, error) {
	bundle := resp.GetDomainKeyBundle()
	n.log.Info("joined cluster", "seed", seed, "leader", resp.GetLeaderId(), "index", resp.GetIndex(),
		"domain_key_bundle_bytes", len(bundle))
	if n.gossip != nil && len(resp.GetGossipAddrs()) > 0 {
		if err := n.JoinGossip(ctx, resp.GetGossipAddrs()); err != nil {
			return nil, err
		}
	}
	if !enrol {
		return nil, nil
	}
	if len(bundle) == 0 {
		return nil, fmt.Errorf("join via %s (leader %s): %w", seed, resp.GetLeaderId(), ErrNoDomainKeyBundle)
	}
	return bundle, nil
}

// remoteRefusal is a leader's permanent refusal of a join, rebuilt on the
// joiner: sentinel identity does not cross gRPC, but its text does.
type remoteRefusal struct {
	msg      string
	sentinel error
}

func (e remoteRefusal) Error() string { return e.msg }
func (e remoteRefusal) Unwrap() error { return e.sentinel }

// permanentJoinErr returns non-nil when err is a refusal that retrying
// cannot change: a bad request, a key the leader will not wrap to, or a
// cluster that cannot enrol. Everything else (no leader, a leader change,
// an HSM hiccup on the leader, a seed not up yet) is worth a retry.
func permanentJoinErr(err error) error {
	st, ok := status.FromError(err)
	if ok && (st.Code() == codes.PermissionDenied || st.Code() == codes.Unauthenticated) {
		// Who this node is comes from its certificate: a retry presents
		// the same one.
		return remoteRefusal{msg: st.Message(), sentinel: ErrJoinIdentity}
	}
	if !ok || (st.Code() != codes.InvalidArgument && st.Code() != codes.FailedPrecondition) {
		return nil
	}
	for _, s := range []error{ErrEnrolmentUnavailable, ErrInvalidTransportKey} {
		if strings.Contains(st.Message(), s.Error()) {
			return remoteRefusal{msg: st.Message(), sentinel: s}
		}
	}
	if st.Code() == codes.InvalidArgument {
		return err
	}
	return nil // FailedPrecondition otherwise means "not the leader"
}

func (n *Node) joinVia(ctx context.Context, seed string, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	conn, err := n.pool.get(seed)
	if err != nil {
		return nil, fmt.Errorf("dial seed %s: %w", seed, err)
	}
	cctx, cancel := context.WithTimeout(ctx, joinRPCTimeout)
	defer cancel()
	return clusterpb.NewClusterClient(conn).Join(cctx, req)
}

// exportDomainKeys is the leader's enrolment step of a join that asked for
// the domain keys. It runs before the node is added to Raft, so a node that
// cannot get them never becomes a member. Only sizes are logged: the key
// and the bundle are opaque, and the bundle is the domain keys (wrapped).
func (n *Node) exportDomainKeys(ctx context.Context, req *clusterpb.JoinRequest) ([]byte, error) {
	pub, id := req.GetTransportPublicKey(), req.GetNodeId()
	if len(pub) == 0 {
		return nil, nil
	}
	if n.cfg.Enrolment == nil {
		return nil, fmt.Errorf("enrol %s: %w", id, ErrEnrolmentUnavailable)
	}
	bundle, err := n.cfg.Enrolment.ExportDomainKeys(ctx, pub)
	switch {
	case err == nil && len(bundle) == 0:
		err = errors.New("exporter returned an empty bundle")
	case errors.Is(err, ErrInvalidTransportKey), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("export domain keys for %s: %w", id, err)
	}
	if err != nil {
		// The leader's HSM may recover, or another leader may serve the
		// retry: transient for the joiner.
		return nil, errRetry{fmt.Errorf("export domain keys for %s: %w", id, err)}
	}
	n.log.Info("exported domain keys for a joining node", "joiner", id,
		"transport_key_bytes", len(pub), "bundle_bytes", len(bundle))
	return bundle, nil
}

// addMember is the leader's side of Join: reconcile Raft's configuration
// with the request, then record the node's metadata in the fsm.
func (n *Node) addMember(ctx context.Context, req *clusterpb.JoinRequest) (uint64, error) {
	id, addr := raft.ServerID(req.GetNodeId()), raft.ServerAddress(req.GetRaftAddr())
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return 0, mapRaftErr(err)
	}
	present := false
	for _, srv := range cf.Configuration().Servers {
		switch {
		case srv.ID == id && srv.Address == addr:
			// A voter asked to be a non-voter is left alone: demotion is
			// the placement logic's call, not a joiner's.
			present = srv.Suffrage == raft.Voter || !req.GetVoter()
		case srv.Address == addr:
			// Another id on this address is a stale identity of a node
			// that was wiped and restarted; it can never answer again.
			n.log.Info("removing stale server on a joining node's address", "stale_id", srv.ID, "raft_addr", addr)
			if err := waitFuture(ctx, n.raft.RemoveServer(srv.ID, 0, n.timeout(ctx))); err != nil {
				return 0, fmt.Errorf("remove stale server %s: %w", srv.ID, mapRaftErr(err))
			}
		}
	}
	if !present {
		// AddVoter/AddNonvoter on a known id updates its address in one
		// configuration change; removing it first would need a quorum
		// without it, which a 3-node cluster with one other node down lacks.
		var f raft.IndexFuture
		if req.GetVoter() {
			f = n.raft.AddVoter(id, addr, 0, n.timeout(ctx))
		} else {
			f = n.raft.AddNonvoter(id, addr, 0, n.timeout(ctx))
		}
		if err := waitFuture(ctx, f); err != nil {
			return 0, fmt.Errorf("add server %s at %s: %w", id, addr, mapRaftErr(err))
		}
		n.log.Info("added server", "id", id, "raft_addr", addr, "voter", req.GetVoter())
	}
	want := &fsmpb.Node{
		Id: req.GetNodeId(), RaftAddr: req.GetRaftAddr(), ApiAddr: req.GetApiAddr(),
		Region: req.GetRegion(), Zone: req.GetZone(), ClusterAddr: req.GetClusterAddr(),
	}
	idx, err := n.ensureRegistered(ctx, want)
	if err != nil {
		return 0, err
	}
	return max(idx, n.raft.LastIndex()), nil
}

// ensureRegistered proposes REGISTER_NODE unless the fsm already holds want.
func (n *Node) ensureRegistered(ctx context.Context, want *fsmpb.Node) (uint64, error) {
	if have, ok := n.fsm.Node(want.GetId()); ok && proto.Equal(have, want) {
		return 0, nil
	}
	cmd, err := fsm.NewCommand(fsmpb.CommandType_COMMAND_TYPE_REGISTER_NODE, want, "", time.Now())
	if err != nil {
		return 0, fmt.Errorf("register node %s: %w", want.GetId(), err)
	}
	res, err := n.Apply(ctx, cmd)
	if err != nil {
		return 0, fmt.Errorf("register node %s: %w", want.GetId(), err)
	}
	if res.GetErrorCode() != "" {
		return 0, fmt.Errorf("register node %s: fsm refused: %s", want.GetId(), res.GetErrorCode())
	}
	return res.GetIndex(), nil
}

func (n *Node) self() *fsmpb.Node {
	return &fsmpb.Node{
		Id: n.cfg.NodeID, RaftAddr: n.raftAddr, ApiAddr: n.cfg.APIAddr,
		Region: n.cfg.Region, Zone: n.cfg.Zone, ClusterAddr: n.cfg.ClusterAddr,
	}
}

// watchLeadership consumes raft's leadership notifications (raft blocks on
// them, so this loop never blocks) and, on every gain, runs registerSelf in
// the background until it succeeds or leadership is lost.
func (n *Node) watchLeadership(ctx context.Context, notify <-chan bool) {
	var stopReg context.CancelFunc
	stopPrev := func() {
		if stopReg != nil {
			stopReg()
			stopReg = nil
		}
	}
	defer stopPrev()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-notify:
			stopPrev()
			if !leader {
				n.log.Info("lost leadership")
				continue
			}
			n.log.Info("gained leadership")
			n.leaderSince.Store(time.Now().UnixNano())
			lctx, cancel := context.WithCancel(ctx)
			stopReg = cancel
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.registerSelf(lctx)
			}()
		}
	}
}

// registerSelf makes sure the fsm holds this leader's own registration, so
// followers can find its cluster address for forwarding. A barrier first makes
// the fsm current, so the check does not propose a needless command.
func (n *Node) registerSelf(ctx context.Context) {
	b := newBackoff(applyBackoffMin, time.Second)
	for ctx.Err() == nil && n.IsLeader() {
		if err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err == nil {
			if _, err := n.ensureRegistered(ctx, n.self()); err == nil {
				return
			} else if !errors.Is(err, context.Canceled) {
				n.log.Warn("self registration failed; retrying", "error", err.Error())
			}
		}
		if b.wait(ctx) != nil {
			return
		}
	}
}
