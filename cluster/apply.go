package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Retry pacing for writes while there is no usable leader: fast enough to
// catch a new leader within an election, slow enough not to spin.
const (
	applyBackoffMin = 5 * time.Millisecond
	applyBackoffMax = 200 * time.Millisecond
)

// errRetry marks a failure worth retrying against the (possibly new) leader.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// Apply commits cmd through the Raft leader and returns the fsm's Result.
// On a follower it forwards to the leader. It retries when there is no
// leader, leadership moves, or forwarding fails transiently, until ctx ends
// (or ApplyTimeout if ctx has no deadline). Retrying is safe because client
// writes carry a request id the fsm deduplicates, and leader-made commands
// (no request id) are idempotent by construction.
//
// On success it also waits until the local fsm has applied the command, so
// a read on this node right after sees the write. If that wait ends with
// ctx, the committed Result is returned together with the error.
func (n *Node) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	// The fsm panics on a committed entry it cannot apply (so that no node
	// diverges silently), which makes one such entry a cluster-wide outage:
	// refuse it before it reaches the log.
	if err := fsm.CheckCommand(cmd); err != nil {
		return nil, fmt.Errorf("apply: %w: %w", ErrInvalidCommand, err)
	}
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, fmt.Errorf("apply: %w: %w", ErrInvalidCommand, err)
	}
	what := cmd.GetType().String()
	b := newBackoff(applyBackoffMin, applyBackoffMax)
	var lastErr error
	var noLeaderSince time.Time
	for {
		if n.closed.Load() {
			return nil, fmt.Errorf("apply %s: %w", what, ErrShutdown)
		}
		res, err := n.applyOnce(ctx, data)
		if err == nil {
			return n.waitLocal(ctx, what, res)
		}
		var retry errRetry
		if !errors.As(err, &retry) {
			return nil, fmt.Errorf("apply %s: %w", what, err)
		}
		lastErr = err
		// A node that has seen no leader for several election timeouts is
		// in a minority (or the cluster lost quorum): say so now rather than
		// at the caller's deadline, so the client learns "no quorum" promptly.
		if errors.Is(err, ErrNoLeader) {
			// Counted from this request, not from the node's last leader
			// contact: an election slowed by a loaded machine must not
			// turn every write that arrives during it into an instant
			// refusal (the SDK's retries each wait this long).
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			} else if time.Since(noLeaderSince) > n.noLeaderWait() {
				return nil, fmt.Errorf("apply %s: %w for %v", what, ErrNoLeader, time.Since(noLeaderSince).Round(time.Millisecond))
			}
		} else {
			noLeaderSince = time.Time{}
		}
		if ctx.Err() == nil {
			n.log.Debug("apply retrying", "type", what, "reason", err.Error())
			if werr := b.wait(ctx); werr == nil {
				continue
			}
		}
		return nil, fmt.Errorf("apply %s: %w (last: %v): %w", what, ErrNoLeader, lastErr, ctx.Err())
	}
}

// noLeaderWait is how long Apply keeps retrying while no leader is known:
// three election timeouts cover an ordinary election (a client retrying an
// Unavailable write with the same request id loses nothing if one runs
// longer); the 500 ms floor keeps very short test timeouts sane.
func (n *Node) noLeaderWait() time.Duration {
	return max(500*time.Millisecond, 3*n.cfg.ElectionTimeout)
}

// applyOnce proposes locally when leader, else forwards once.
func (n *Node) applyOnce(ctx context.Context, data []byte) (*fsmpb.Result, error) {
	if n.IsLeader() {
		return n.applyLocal(ctx, data)
	}
	lid, addr := n.Leader()
	switch {
	case lid == "":
		return nil, errRetry{ErrNoLeader}
	case lid == n.cfg.NodeID:
		return nil, errRetry{errors.New("leadership is changing on this node")}
	case addr == "":
		return nil, errRetry{fmt.Errorf("leader %s has no registered api address yet", lid)}
	}
	return n.forwardApply(ctx, lid, addr, data)
}

// applyLocal runs data through raft on this (leader) node.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsmpb.Result, error) {
	f := n.raft.Apply(data, n.timeout(ctx))
	if err := waitFuture(ctx, f); err != nil {
		switch {
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, fmt.Errorf("%w: %w", ErrShutdown, err)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress),
			errors.Is(err, raft.ErrAbortedByRestore):
			return nil, errRetry{err}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return nil, fmt.Errorf("proposed at the leader, commit outcome unknown: %w", err)
		}
		return nil, err
	}
	switch r := f.Response().(type) {
	case *fsmpb.Result:
		if r.GetIndex() == 0 {
			// Results may be shared with the fsm's dedup table: never
			// mutate one in place.
			r = proto.Clone(r).(*fsmpb.Result)
			r.Index = f.Index()
		}
		return r, nil
	case error:
		return nil, fmt.Errorf("fsm apply at index %d: %w", f.Index(), r)
	default:
		return nil, fmt.Errorf("fsm apply at index %d returned %T, want *fsmpb.Result", f.Index(), r)
	}
}

// leaderWatchInterval is how often a forward in flight checks that its
// leader is still this node's leader.
const leaderWatchInterval = 10 * time.Millisecond

// forwardApply sends data to leader lid's Cluster.Apply at addr. The call
// is abandoned, to be retried, once this node stops seeing lid as leader:
// a leader cut off by a partition never answers (the connection holds the
// request, it is not refused), and waiting for the caller's deadline would
// turn the minority's ErrNoLeader into a bare DeadlineExceeded.
func (n *Node) forwardApply(ctx context.Context, lid, addr string, data []byte) (*fsmpb.Result, error) {
	conn, err := n.pool.get(addr)
	if err != nil {
		return nil, errRetry{fmt.Errorf("dial leader %s: %w", addr, err)}
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.cancelOnLeaderChange(fctx, lid, cancel)
	resp, err := clusterpb.NewClusterClient(conn).Apply(fctx, &clusterpb.ApplyRequest{Command: data})
	if err != nil {
		if ctx.Err() == nil && fctx.Err() != nil {
			return nil, errRetry{fmt.Errorf("forward to leader %s at %s abandoned: leader changed", lid, addr)}
		}
		return nil, classifyRPCErr(fmt.Sprintf("forward to leader %s", addr), err)
	}
	res, err := decodeResult(resp.GetResult())
	if err != nil {
		return nil, fmt.Errorf("result from leader %s: %w", addr, err)
	}
	return res, nil
}

// cancelOnLeaderChange calls cancel when this node's leader is no longer
// lid, or returns when ctx ends.
func (n *Node) cancelOnLeaderChange(ctx context.Context, lid string, cancel context.CancelFunc) {
	t := time.NewTicker(leaderWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, id := n.raft.LeaderWithID(); string(id) != lid {
				cancel()
				return
			}
		}
	}
}

// errBadResult reports a forwarded Result that does not decode.
var errBadResult = errors.New("undecodable result")

// decodeResult parses a Result sent back by the leader. A committed command
// always has an index, so a zero index means the bytes are not a Result.
func decodeResult(b []byte) (*fsmpb.Result, error) {
	res := &fsmpb.Result{}
	if err := proto.Unmarshal(b, res); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadResult, err)
	}
	if res.GetIndex() == 0 {
		return nil, fmt.Errorf("%w: no log index", errBadResult)
	}
	return res, nil
}

// classifyRPCErr decides whether a node-to-node RPC failure is worth a
// retry: unreachable, not (or no longer) leader, or aborted mid-commit.
func classifyRPCErr(what string, err error) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	switch status.Code(err) {
	case codes.Unavailable, codes.FailedPrecondition, codes.Aborted:
		return errRetry{wrapped}
	case codes.InvalidArgument:
		return fmt.Errorf("%w: %w", ErrInvalidCommand, wrapped)
	}
	return wrapped
}

// waitLocal waits for the local fsm to reach res.Index.
func (n *Node) waitLocal(ctx context.Context, what string, res *fsmpb.Result) (*fsmpb.Result, error) {
	if err := n.fsm.WaitApplied(ctx, res.GetIndex()); err != nil {
		return res, fmt.Errorf("apply %s: committed at index %d, wait for local apply: %w", what, res.GetIndex(), err)
	}
	return res, nil
}

// connPool holds one gRPC client connection per peer cluster-plane address
// (clusterAddrOf: an API address only for a node built before the split);
// gRPC reconnects by itself, so a connection is kept until Close.
type connPool struct {
	opts   []grpc.DialOption
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newConnPool(opts []grpc.DialOption) *connPool {
	return &connPool{opts: opts, conns: make(map[string]*grpc.ClientConn)}
}

func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrShutdown
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var first error
	for addr, c := range p.conns {
		if err := c.Close(); err != nil && first == nil {
			first = fmt.Errorf("close connection to %s: %w", addr, err)
		}
		delete(p.conns, addr)
	}
	return first
}
