package transport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Consistency tokens travel as gRPC metadata rather than request fields so
// that every call, whatever its message, can carry one.
const (
	// ConsistencyTokenHeader is the request header naming the newest Raft
	// commit index the client has seen (decimal). The node serves the call
	// only once its fsm has applied that index.
	ConsistencyTokenHeader = "x-meridian-consistency-token"
	// AppliedIndexHeader is the response header carrying the index this
	// node had applied when it answered, so clients learn its freshness.
	AppliedIndexHeader = "x-meridian-applied-index"
	// DefaultMaxConsistencyWait bounds the wait for a token when
	// WithConsistency is given no positive bound. Long enough to ride out
	// a WAN round trip or two of replication lag, short enough that a
	// client failing over to another node still meets a human deadline.
	DefaultMaxConsistencyWait = 2 * time.Second
)

// maxTokenEcho bounds how much of a malformed header the error repeats.
const maxTokenEcho = 32

// AppliedWaiter reports and waits for this node's fsm applied index. The
// fsm satisfies it directly (*fsm.FSM).
type AppliedWaiter interface {
	AppliedIndex() uint64
	// WaitApplied returns nil once the applied index is at least index,
	// or an error when ctx ends first.
	WaitApplied(ctx context.Context, index uint64) error
}

// WithConsistency makes KeyManagement calls honour consistency tokens
// against w, waiting at most maxWait (DefaultMaxConsistencyWait if <= 0),
// and never past the call's own deadline. Without it a token is still
// checked for form but not waited for (there is no replica to wait on),
// and no AppliedIndexHeader is sent.
func WithConsistency(w AppliedWaiter, maxWait time.Duration) Option {
	return func(s *Server) {
		if maxWait <= 0 {
			maxWait = DefaultMaxConsistencyWait
		}
		s.waiter, s.maxWait = w, maxWait
	}
}

// WithNodeID names this node in the errors a caller may act on ("node n2
// has not caught up ..."), so a client log says which node to avoid.
func WithNodeID(id string) Option {
	return func(s *Server) { s.nodeID = id }
}

// parseConsistencyToken reads the token from the header values: absent
// gives 0 (no wait). Every value must be a decimal uint64; with several
// (a proxy may add one) the highest wins, as the strictest requirement.
func parseConsistencyToken(values []string) (uint64, error) {
	var token uint64
	for _, v := range values {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("header %s: %s is not a decimal Raft index (uint64)", ConsistencyTokenHeader, quoteShort(v, maxTokenEcho))
		}
		token = max(token, n)
	}
	return token, nil
}

// awaitConsistency holds a KeyManagement call until this node has applied
// the request's consistency token, then stamps the response with the
// applied index. Members is exempt from the wait: it is how a client finds
// a fresher node, so a lagging node must still answer it.
func (s *Server) awaitConsistency(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, kmPrefix) {
		return handler(ctx, req)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	token, err := parseConsistencyToken(md.Get(ConsistencyTokenHeader))
	if s.waiter != nil {
		// Stamped once the call is done, so the index is as fresh as
		// possible (a write has been applied here by then).
		defer s.stampApplied(ctx)
	}
	if err != nil {
		return nil, newStatusError(codes.InvalidArgument, err.Error(), "ValidationException")
	}
	if s.waiter != nil && token > 0 && info.FullMethod != membersMethod {
		if err := s.waitForToken(ctx, token); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

var membersMethod = kmPrefix + "Members"

// waitForToken waits until token is applied, at most maxWait and never
// past ctx's deadline. A caller that went away gets its own context error;
// any other miss is Unavailable so the client retries on another node.
func (s *Server) waitForToken(ctx context.Context, token uint64) error {
	if s.waiter.AppliedIndex() >= token {
		s.metrics.observeConsistencyWait(waitImmediate, 0)
		return nil
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, s.maxWait)
	err := s.waiter.WaitApplied(wctx, token)
	cancel()
	elapsed := time.Since(start)
	if err == nil {
		s.metrics.observeConsistencyWait(waitWaited, elapsed)
		return nil
	}
	s.metrics.observeConsistencyWait(waitTimeout, elapsed)
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	node := "node"
	if s.nodeID != "" {
		node = "node " + s.nodeID
	}
	return newStatusError(codes.Unavailable,
		fmt.Sprintf("%s has not caught up to consistency token %d (applied %d); try another node",
			node, token, s.waiter.AppliedIndex()),
		"KMSUnavailableException")
}

// stampApplied sets AppliedIndexHeader. gRPC sends unary headers with the
// response or the status, so setting it after the handler still works.
// Best effort, like the request id: it informs, it is not a contract.
func (s *Server) stampApplied(ctx context.Context) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(AppliedIndexHeader, strconv.FormatUint(s.waiter.AppliedIndex(), 10)))
}
