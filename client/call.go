package client

import (
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// CallInfo describes how one call was served. Attach it with WithCallInfo;
// the client fills it in before the call returns (also on failure).
type CallInfo struct {
	// Addr, NodeID and Region name the node that served the call (on
	// failure: the node of the last attempt to finish). NodeID and Region
	// are empty when the client has no member list (an older server).
	Addr   string
	NodeID string
	Region string
	// Peer is the remote address that attempt reached (nil if none).
	Peer net.Addr
	// Attempts is how many attempts were made, hedged ones included.
	Attempts int
	// Tries lists every attempt in the order they started, with its error.
	Tries []Attempt
	// RequestID is the idempotency id sent with a write ("" for reads).
	RequestID string
	// ConsistencyToken is the commit index sent with the call (0: none).
	ConsistencyToken uint64
	// Header is the response header metadata of that attempt.
	Header metadata.MD
}

// Attempt is one try of a call at one node.
type Attempt struct {
	Addr, NodeID, Region string
	// Hedged: sent while an earlier attempt was still running.
	Hedged   bool
	Duration time.Duration
	// Err is nil for the attempt that succeeded (and for a hedged attempt
	// still running when another one won, it is the cancellation).
	Err error
}

type callInfoKey struct{}

// WithCallInfo returns a ctx that makes the client record into info how the
// call made with it was served (which node, how many attempts).
func WithCallInfo(ctx context.Context, info *CallInfo) context.Context {
	return context.WithValue(ctx, callInfoKey{}, info)
}

// rpc is a generated stub method taken as a method expression, e.g.
// apiv1.KeyManagementClient.Encrypt.
type rpc[Req, Resp proto.Message] func(apiv1.KeyManagementClient, context.Context, Req, ...grpc.CallOption) (Resp, error)

// commitIndexed is implemented by every write response.
type commitIndexed interface{ GetCommitIndex() uint64 }

// read calls a method that changes no state, so retrying or hedging it is
// always safe.
func read[Req, Resp proto.Message](ctx context.Context, c *Client, m rpc[Req, Resp], req Req) (Resp, error) {
	return invoke(ctx, c, &call[Req, Resp]{c: c, m: m, req: normalize(req)})
}

// write calls a state-changing method. It sends a copy of req whose
// request_id is set (fresh unless the caller chose one) and keeps that id
// across retries, so the server can answer a retry with the first result
// instead of applying the write twice.
func write[Req, Resp proto.Message](ctx context.Context, c *Client, m rpc[Req, Resp], req Req) (Resp, error) {
	req = normalize(req)
	msg := req.ProtoReflect()
	fd := msg.Descriptor().Fields().ByName("request_id")
	id := msg.Get(fd).String()
	if id == "" {
		id = newRequestID()
		req = proto.Clone(req).(Req)
		req.ProtoReflect().Set(fd, protoreflect.ValueOfString(id))
	}
	resp, err := invoke(ctx, c, &call[Req, Resp]{c: c, m: m, req: req, write: true, requestID: id})
	if err == nil {
		if ci, ok := any(resp).(commitIndexed); ok {
			c.observeCommit(ci.GetCommitIndex())
		}
	}
	return resp, err
}

// normalize turns a nil request into an empty one, so callers may pass nil
// for requests with no required fields (ListKeys).
func normalize[Req proto.Message](req Req) Req {
	if m := req.ProtoReflect(); !m.IsValid() {
		return m.Type().New().Interface().(Req)
	}
	return req
}

// call is one logical call: its request, the view it routes by (fixed for
// all its attempts) and which routes it has tried.
type call[Req, Resp proto.Message] struct {
	c         *Client
	m         rpc[Req, Resp]
	req       Req
	write     bool
	requestID string
	v         *view
	tried     []bool
	last      *node      // the node next picked last; only the launching goroutine touches it
	info      *CallInfo  // nil when the caller did not ask
	mu        sync.Mutex // guards info.Tries while hedged attempts run
}

// result is one attempt's outcome.
type result[Resp any] struct {
	resp  Resp
	err   *Error
	retry bool
	r     route
	peer  peer.Peer
	hdr   metadata.MD
}

func invoke[Req, Resp proto.Message](ctx context.Context, c *Client, s *call[Req, Resp]) (Resp, error) {
	var zero Resp
	if info, _ := ctx.Value(callInfoKey{}).(*CallInfo); info != nil {
		*info = CallInfo{RequestID: s.requestID}
		s.info = info
	}
	if c.closed.Load() {
		return zero, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok && c.cfg.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	if tok := c.lastCommit.Load(); tok > 0 && !c.cfg.DisableConsistencyToken {
		ctx = metadata.AppendToOutgoingContext(ctx, ConsistencyTokenHeader, strconv.FormatUint(tok, 10))
		if s.info != nil {
			s.info.ConsistencyToken = tok
		}
	}
	s.v = c.router.current()
	if len(s.v.routes) == 0 {
		return zero, ErrClosed // only a closing router is empty
	}
	if !s.write && c.cfg.HedgeAfter > 0 {
		return s.hedged(ctx)
	}
	return s.serial(ctx)
}

// serial runs attempts one after another. A data-plane call moves to the
// next untried node at once (its failure was that node's); a write, and any
// call once every node was tried, backs off first, since what it waits for
// (a leader, a node catching up) is not cured by another node.
func (s *call[Req, Resp]) serial(ctx context.Context) (Resp, error) {
	var zero Resp
	var last *Error
	for n := 1; ; n++ {
		r, fresh := s.next()
		if n > 1 && (s.write || !fresh) {
			if err := sleep(ctx, s.c.backoff(n-1)); err != nil {
				return zero, ctxError(err, n-1, last)
			}
		}
		res := s.attempt(ctx, ctx, r, s.begin(r, false))
		s.finish(&res)
		if res.err == nil {
			return res.resp, nil
		}
		last = res.err
		if !res.retry || n >= s.c.cfg.MaxAttempts {
			return zero, last
		}
	}
}

// next picks the route for the next attempt; fresh is false when every
// route was already tried and a new round starts.
func (s *call[Req, Resp]) next() (r route, fresh bool) {
	if s.last != nil && s.last.isRetired() {
		// The view this call started with is stale (a refresh dropped
		// the node it last tried): route the rest, serial or hedged, by
		// the current one rather than spend attempts on other dropped
		// nodes.
		if v := s.c.router.current(); len(v.routes) > 0 {
			s.v, s.tried = v, nil
		}
	}
	now := time.Now().UnixNano()
	if s.tried == nil {
		s.tried = make([]bool, len(s.v.routes))
	}
	i, fresh := s.v.pick(s.tried, now), true
	if i < 0 {
		clear(s.tried)
		i, fresh = s.v.pick(s.tried, now), false
	}
	s.tried[i] = true
	s.last = s.v.routes[i].n
	return s.v.routes[i], fresh
}

// begin records an attempt about to start and returns its index in Tries;
// it runs on the calling goroutine so Tries is in start order.
func (s *call[Req, Resp]) begin(r route, hedged bool) int {
	if s.info == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Tries = append(s.info.Tries, Attempt{Addr: r.n.addr, NodeID: r.id, Region: r.region, Hedged: hedged})
	s.info.Attempts = len(s.info.Tries)
	return len(s.info.Tries) - 1
}

// attempt sends the request once to r; idx is its entry from begin. actx is
// what the attempt runs under (a hedged call's cancellable scope); ctx is the
// caller's, which decides whether a failure is the call's end or the node's.
func (s *call[Req, Resp]) attempt(actx, ctx context.Context, r route, idx int) result[Resp] {
	res := result[Resp]{r: r}
	timed := !s.write && s.c.cfg.AttemptTimeout > 0
	if timed {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(actx, s.c.cfg.AttemptTimeout)
		defer cancel()
	}
	var opts []grpc.CallOption
	var start time.Time
	if s.info != nil {
		opts = []grpc.CallOption{grpc.Peer(&res.peer), grpc.Header(&res.hdr)}
		start = time.Now()
	}
	r.n.acquire()
	resp, err := s.m(r.n.api, actx, s.req, opts...)
	r.n.release()
	if err == nil {
		res.resp = resp
		r.n.up()
	} else {
		res.err, res.retry = s.outcome(ctx, timed, r.n, err)
	}
	if s.info != nil {
		s.mu.Lock()
		s.info.Tries[idx].Duration = time.Since(start)
		if res.err != nil {
			s.info.Tries[idx].Err = res.err
		}
		s.mu.Unlock()
	}
	return res
}

// outcome classifies a failed attempt: retry it elsewhere or end the call,
// and whether the node itself is to blame (then it is marked down).
func (s *call[Req, Resp]) outcome(ctx context.Context, timed bool, n *node, err error) (*Error, bool) {
	e := fromStatus(err)
	var blame bool
	switch {
	case e.Code == codes.Unavailable:
		// A connection failure carries no exception. A server's own
		// Unavailable on the data plane (not caught up, stale) is about
		// that node; on a write it is about the cluster (no leader), and
		// every node would say the same.
		blame = e.Exception == "" || !s.write
	case e.Code == codes.DeadlineExceeded && e.Exception == "" && timed:
		// Not the server's own timeout: the attempt timeout fired (on a
		// hung or unreachable node) or the caller's deadline did.
		blame = true
	case e.Code == codes.Canceled:
		// The connection closed under us (the node left the set), or the
		// caller cancelled.
	default:
		return e, false
	}
	if s.c.closed.Load() {
		return e, false
	}
	if expired(ctx) {
		// The caller gave up while this attempt failed in a way we would
		// have retried: report the caller's reason, keeping the node's.
		cerr := ctx.Err()
		if cerr == nil {
			cerr = context.DeadlineExceeded
		}
		if code := status.FromContextError(cerr).Code(); code != e.Code {
			return &Error{Code: code, Message: fmt.Sprintf("%v; last error: %v", cerr, e)}, false
		}
		return e, false
	}
	if blame {
		s.c.markDown(n)
	}
	return e, true
}

// expired reports whether the caller's ctx is over. gRPC enforces a
// deadline with its own timer, so its DeadlineExceeded can come a moment
// before ctx.Err() is set; the clock settles it.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// finish records res as the call's outcome in the caller's CallInfo.
func (s *call[Req, Resp]) finish(res *result[Resp]) {
	if s.info == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Addr, s.info.NodeID, s.info.Region = res.r.n.addr, res.r.id, res.r.region
	s.info.Peer, s.info.Header = res.peer.Addr, res.hdr
}

// ctxError is the error of a call whose ctx ended between attempts; it
// keeps what the last attempt met.
func ctxError(err error, attempts int, last *Error) *Error {
	code := status.FromContextError(err).Code()
	return &Error{Code: code, Message: fmt.Sprintf("%v after %d attempts; last error: %v", err, attempts, last)}
}

// backoff is the wait after the given attempt: exponential, the upper half jittered,
// so many clients failing over at once do not retry in lockstep.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << min(attempt-1, 30)
	if d > c.cfg.BackoffMax || d <= 0 {
		d = c.cfg.BackoffMax
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:]) // never fails (crypto/rand's documented contract)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
