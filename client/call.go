package client

import (
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
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
	// Addr is the configured address of the node that served the last attempt.
	Addr string
	// Peer is the remote address the last attempt reached (nil if none).
	Peer net.Addr
	// Attempts is how many attempts were made.
	Attempts int
	// RequestID is the idempotency id sent with a write ("" for reads).
	RequestID string
	// Header is the response header metadata of the last attempt.
	Header metadata.MD
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

// read calls a method that changes no state, so retrying it is always safe.
func read[Req, Resp proto.Message](ctx context.Context, c *Client, m rpc[Req, Resp], req Req) (Resp, error) {
	return invoke(ctx, c, m, normalize(req), "")
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
	resp, err := invoke(ctx, c, m, req, id)
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

// invoke runs the attempts. Only Unavailable is retried: it means the request
// was not served (or, for writes, may be replayed safely thanks to the id).
func invoke[Req, Resp proto.Message](ctx context.Context, c *Client, m rpc[Req, Resp], req Req, requestID string) (Resp, error) {
	var zero Resp
	info, _ := ctx.Value(callInfoKey{}).(*CallInfo)
	if info == nil {
		info = &CallInfo{}
	}
	*info = CallInfo{RequestID: requestID}
	if c.closed.Load() {
		return zero, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok && c.cfg.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	var lastErr *Error
	for attempt := 1; ; attempt++ {
		ep := c.router.pick()
		var p peer.Peer
		var hdr metadata.MD
		resp, err := m(ep.api, ctx, req, grpc.Peer(&p), grpc.Header(&hdr))
		info.Addr, info.Peer, info.Header, info.Attempts = ep.addr, p.Addr, hdr, attempt
		if err == nil {
			return resp, nil
		}
		lastErr = fromStatus(err)
		if lastErr.Code != codes.Unavailable || attempt >= c.cfg.MaxAttempts {
			return zero, lastErr
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			code := status.FromContextError(err).Code()
			return zero, &Error{Code: code, Message: fmt.Sprintf("%v after %d attempts; last error: %v", err, attempt, lastErr)}
		}
	}
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
