package transport

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// memberCallTimeout bounds one call to another member during a rotation
// (over the cluster plane, through the backend).
// A sync makes an RSA-3072 transport key inside the member's HSM, which a
// slow network HSM may take seconds to do.
const memberCallTimeout = 2 * time.Minute

var rotateMethod = "/" + apiv1.Operator_ServiceDesc.ServiceName + "/RotateDomainKey"

// RotateDomainKey is a stream, so none of the unary interceptors run: it
// attaches its request id, recovers panics, maps errors and records
// metrics itself.
func (o *operatorService) RotateDomainKey(_ *apiv1.RotateDomainKeyRequest, stream apiv1.Operator_RotateDomainKeyServer) (err error) {
	ctx := streamRequestID(stream)
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			rid := RequestIDFromContext(ctx)
			o.log().LogAttrs(ctx, slog.LevelError, "panic serving request",
				slog.String("operation", operationName(rotateMethod)), slog.String("request_id", rid),
				slog.String("panic", describePanic(v)), slog.String("stack", string(debug.Stack())))
			err = internalStatus(rid)
		}
		outcome := "ok"
		if err != nil {
			outcome = ExceptionOf(err)
		}
		if o.srv.metrics != nil {
			o.srv.metrics.observe(rotateMethod, outcome, time.Since(start))
		}
	}()
	if !o.rotating.TryLock() {
		return newStatusError(codes.FailedPrecondition,
			"a domain-key rotation is already running on this node; wait for it (or cancel it) and run again", "KMSInvalidStateException")
	}
	defer o.rotating.Unlock()
	r := &rotation{o: o, stream: stream}
	if err := r.run(ctx); err != nil {
		return o.fail(ctx, "RotateDomainKey", err)
	}
	return nil
}

// streamRequestID gives a stream the request id the unary chain gives a
// call: the client's x-request-id if well formed, else a new one, echoed
// in the response header.
func streamRequestID(stream grpc.ServerStream) context.Context {
	ctx := stream.Context()
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && validRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = newRequestID()
	}
	_ = stream.SetHeader(metadata.Pairs(RequestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id)
}

// rotation is one run of RotateDomainKey.
type rotation struct {
	o      *operatorService
	stream apiv1.Operator_RotateDomainKeyServer
	self   Member   // this node as the membership view sees it
	peers  []Member // every other member
}

func (r *rotation) run(ctx context.Context) error {
	if err := r.findMembers(ctx); err != nil {
		return err
	}
	target, err := r.rotateHSM(ctx)
	if err != nil {
		return err
	}
	if err := r.distribute(ctx, target); err != nil {
		return err
	}
	final, err := r.rewrap(ctx)
	if err != nil {
		return err
	}
	r.o.log().LogAttrs(ctx, slog.LevelInfo, "domain key rotation complete", slog.Uint64("domain_key_version", uint64(final)))
	return r.send(ctx, &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_DONE, DomainKeyVersion: final})
}

func (r *rotation) send(ctx context.Context, p *apiv1.RotateDomainKeyProgress) error {
	if err := r.stream.Send(p); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rotate domain key: caller went away: %w", ctx.Err())
		}
		return fmt.Errorf("rotate domain key: send progress: %w", err)
	}
	return nil
}

// findMembers splits the membership view into this node and the others.
// Without a view this node rotates alone.
func (r *rotation) findMembers(ctx context.Context) error {
	if r.o.srv.members == nil {
		return nil
	}
	view, err := membersView(ctx, r.o.srv.members)
	if err != nil {
		return err
	}
	found := false
	for _, m := range view.Members {
		if m.NodeID == view.ServedBy {
			r.self, found = m, true
			continue
		}
		r.peers = append(r.peers, m)
	}
	if !found && len(r.peers) > 0 {
		return newStatusError(codes.Unavailable, fmt.Sprintf("this node (%s) is not in its own membership view yet, so other members could not fetch the new domain key from it; retry shortly", view.ServedBy), "KMSUnavailableException")
	}
	return nil
}

// live reports whether a member is expected to answer: a dead or departed
// one is skipped (and told about in the progress), anything else must
// take part or the rotation stops.
func live(m Member) bool { return m.Status != StatusDead && m.Status != StatusLeft }

// rotateHSM is phase 1: it checks that this node may lead the rotation,
// then makes DK version n+1 in its HSM, unless an interrupted run already
// made one (some key versions are under an older version than the HSM's
// current one), in which case it resumes with the current version.
func (r *rotation) rotateHSM(ctx context.Context) (uint32, error) {
	st, err := r.o.backend.DomainKeyStatus(ctx)
	if err != nil {
		return 0, err
	}
	if len(st.HSMVersions) == 0 {
		return 0, newStatusError(codes.FailedPrecondition, "this node's HSM holds no domain key (it was never initialised or enrolled); run the rotation on a node that holds one", "KMSInvalidStateException")
	}
	for dk, n := range st.Versions {
		if n > 0 && dk > st.Current {
			return 0, newStatusError(codes.FailedPrecondition, fmt.Sprintf(
				"key versions are wrapped under domain key v%d, but this node's HSM holds only %s: run the rotation on a node that holds v%d, or first sync this node from one (meridian operator domain-key sync)",
				dk, joinVersions(st.HSMVersions), dk), "KMSInvalidStateException")
		}
	}
	if err := r.precheckPeers(ctx, st.Current); err != nil {
		return 0, err
	}
	if st.Pending > 0 {
		r.o.log().LogAttrs(ctx, slog.LevelInfo, "resuming domain key rotation",
			slog.Uint64("domain_key_version", uint64(st.Current)), slog.Int("pending", st.Pending))
		return st.Current, r.send(ctx, &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_ROTATE_HSM, DomainKeyVersion: st.Current, Skipped: true})
	}
	v, err := r.o.backend.RotateHSMDomainKey(ctx)
	if err != nil {
		return 0, err
	}
	r.o.log().LogAttrs(ctx, slog.LevelInfo, "made a new domain key version in this node's HSM", slog.Uint64("domain_key_version", uint64(v)))
	return v, r.send(ctx, &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_ROTATE_HSM, DomainKeyVersion: v})
}

// precheckPeers asks every live member which DK versions it holds before
// anything changes: an unreachable member stops the rotation while nothing
// has been made, and a member holding a version newer than this node's
// means another rotation made it there; a second "v n+1" made here would
// differ from it, and nodes would disagree on what v n+1 is.
func (r *rotation) precheckPeers(ctx context.Context, current uint32) error {
	var problems []string
	for _, res := range r.forPeers(ctx, func(ctx context.Context, m Member) (any, error) {
		return r.o.backend.MemberDomainKeyVersions(ctx, m.NodeID)
	}) {
		if res.skipped {
			continue
		}
		if res.err != nil {
			problems = append(problems, fmt.Sprintf("node %s (%s) did not answer: %s", res.m.NodeID, res.m.APIAddr, remoteMessage(res.err)))
			continue
		}
		held := res.val.([]uint32)
		if n := len(held); n > 0 && held[n-1] > current {
			problems = append(problems, fmt.Sprintf("node %s (%s) holds domain key v%d, newer than this node's v%d: another rotation made it; run the rotation with --addr %s",
				res.m.NodeID, res.m.APIAddr, held[n-1], current, res.m.APIAddr))
		}
	}
	if len(problems) > 0 {
		return newStatusError(codes.FailedPrecondition, "rotate domain key: nothing was changed: "+strings.Join(problems, "; "), "KMSInvalidStateException")
	}
	return nil
}

// distribute is phase 2: every live member imports the DK versions it
// lacks from this node. A member that fails stops the rotation before any
// key version is re-wrapped under a version it could not unwrap.
func (r *rotation) distribute(ctx context.Context, target uint32) error {
	var failed []string
	events := make(chan peerResult, len(r.peers))
	go func() {
		defer close(events)
		r.forPeersAsync(ctx, events, func(ctx context.Context, m Member) (any, error) {
			return r.o.backend.SyncMember(ctx, m.NodeID, r.self.NodeID)
		})
	}()
	var sendErr error
	for res := range events {
		p := &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE, DomainKeyVersion: target,
			NodeId: res.m.NodeID, ApiAddr: res.m.APIAddr}
		switch {
		case res.skipped:
			p.Outcome = apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_SKIPPED
			p.Detail = fmt.Sprintf("node is %s; it lacks domain key v%d until it is back and synced (meridian operator domain-key sync)", res.m.Status, target)
		case res.err != nil:
			p.Outcome = apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_FAILED
			p.Detail = remoteMessage(res.err)
		default:
			resp := res.val.(DomainKeySync)
			p.ImportedVersions = resp.Imported
			if slices.Contains(resp.Versions, target) {
				p.Outcome = apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK
			} else {
				p.Outcome = apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_FAILED
				p.Detail = fmt.Sprintf("after the sync it holds %s, not v%d", joinVersions(resp.Versions), target)
			}
		}
		if p.Outcome == apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_FAILED {
			failed = append(failed, fmt.Sprintf("node %s (%s): %s", res.m.NodeID, res.m.APIAddr, p.Detail))
		}
		if sendErr == nil {
			sendErr = r.send(ctx, p)
		}
	}
	if sendErr != nil {
		return sendErr
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return newStatusError(codes.Unavailable, fmt.Sprintf(
			"rotate domain key: %d member(s) did not receive domain key v%d, so nothing was re-wrapped: %s; fix them and run the rotation again (it resumes without making another version)",
			len(failed), target, strings.Join(failed, "; ")), "KMSUnavailableException")
	}
	return nil
}

// rewrap is phase 3: every key version moves under the current DK version
// through Raft, with progress streamed after each batch.
func (r *rotation) rewrap(ctx context.Context) (uint32, error) {
	var sendErr error
	v, err := r.o.backend.RewrapDomainKey(ctx, func(done, total int) {
		if sendErr == nil {
			sendErr = r.send(ctx, &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_REWRAP,
				Done: uint64(done), Total: uint64(total)})
		}
	})
	if err != nil {
		return 0, err
	}
	return v, sendErr
}

// peerResult is one member's answer during a rotation.
type peerResult struct {
	m       Member
	val     any
	err     error
	skipped bool // the member is dead or has left; not called
}

// peerCall is one backend call about member m (over the cluster plane).
type peerCall func(ctx context.Context, m Member) (any, error)

// forPeers calls fn on every live peer at once and returns the results in
// r.peers' order.
func (r *rotation) forPeers(ctx context.Context, fn peerCall) []peerResult {
	ch := make(chan peerResult, len(r.peers))
	r.forPeersAsync(ctx, ch, fn)
	close(ch)
	byID := map[string]peerResult{}
	for res := range ch {
		byID[res.m.NodeID] = res
	}
	out := make([]peerResult, 0, len(r.peers))
	for _, m := range r.peers {
		out = append(out, byID[m.NodeID])
	}
	return out
}

// forPeersAsync calls fn on every live peer at once, sends each result to
// out as it arrives, and returns when all have.
func (r *rotation) forPeersAsync(ctx context.Context, out chan<- peerResult, fn peerCall) {
	var wg sync.WaitGroup
	for _, m := range r.peers {
		if !live(m) {
			out <- peerResult{m: m, skipped: true}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
			defer cancel()
			cctx = metadata.AppendToOutgoingContext(cctx, RequestIDHeader, RequestIDFromContext(ctx))
			v, err := fn(cctx, m)
			out <- peerResult{m: m, val: v, err: err}
		}()
	}
	wg.Wait()
}

// remoteMessage is what an operator is told about a member's failure: the
// member's own status message (already stripped of internal detail by its
// error mapping), or the local error for a call that never reached it.
func remoteMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", st.Code(), st.Message())
	}
	return err.Error()
}
