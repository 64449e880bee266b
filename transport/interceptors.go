package transport

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/identity"
)

// RequestIDHeader is the gRPC metadata key that carries a request id. A
// client may set it to correlate its logs with the server's; otherwise the
// server makes one. Either way the server returns it in the response header.
const RequestIDHeader = "x-request-id"

// maxRequestIDLen bounds a client-chosen request id: it is logged and echoed.
const maxRequestIDLen = 128

var kmPrefix = "/" + apiv1.KeyManagement_ServiceDesc.ServiceName + "/"

type requestIDKey struct{}

// RequestIDFromContext returns the request id the interceptors attached to
// ctx, or "" outside a request.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// unaryInterceptors lists the chain, outermost first. Metrics and the access
// log sit outside panic recovery and error mapping so they see the final
// outcome; the consistency wait comes next, so a call that waited out its
// deadline is refused by the expired-deadline check, which is innermost so
// it runs just before the store would be called.
func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		s.withRequestID,
		s.authenticate,
		s.observe,
		s.recoverPanics,
		s.mapErrors,
		s.awaitConsistency,
		rejectExpired,
	}
}

func (s *Server) withRequestID(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && validRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = newRequestID()
	}
	// Best effort: the header is a convenience for support, not a contract.
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return handler(context.WithValue(ctx, requestIDKey{}, id), req)
}

// validRequestID accepts short printable ASCII without spaces, so a client
// cannot forge log lines or bloat them through the id.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID needs uniqueness for correlation, not secrecy, so the fast
// non-cryptographic generator is enough.
func newRequestID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// observe records the request metrics and writes the access log line. The
// log holds names and ids only: never a request or response body.
func (s *Server) observe(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	elapsed := time.Since(start)
	outcome := "ok"
	if err != nil {
		outcome = ExceptionOf(err)
	}
	if s.metrics != nil {
		s.metrics.observe(info.FullMethod, outcome, elapsed)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{
			slog.String("operation", operationName(info.FullMethod)),
			slog.String("request_id", RequestIDFromContext(ctx)),
			slog.Any("principal", principalOf(ctx)),
			slog.String("outcome", outcome),
			slog.Duration("duration", elapsed),
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "request", append(attrs, keyAttrs(req)...)...)
	}
	return resp, err
}

// principalOf is the caller for the access log: its LogValue (SPIFFE ID,
// kind, method) carries no secret, and "anonymous" for a caller without a
// certificate.
func principalOf(ctx context.Context) slog.LogValuer {
	p, _ := identity.FromContext(ctx)
	return p
}

// keyAttrs picks the key and alias names out of a request for the access
// log; the generated getters are the only fields it reads.
func keyAttrs(req any) []slog.Attr {
	var attrs []slog.Attr
	add := func(name, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(name, v))
		}
	}
	if r, ok := req.(interface{ GetKeyId() string }); ok {
		add("key_id", r.GetKeyId())
	}
	if r, ok := req.(interface{ GetSourceKeyId() string }); ok {
		add("source_key_id", r.GetSourceKeyId())
	}
	if r, ok := req.(interface{ GetDestinationKeyId() string }); ok {
		add("destination_key_id", r.GetDestinationKeyId())
	}
	if r, ok := req.(interface{ GetAliasName() string }); ok {
		add("alias_name", r.GetAliasName())
	}
	if r, ok := req.(interface{ GetTargetKeyId() string }); ok {
		add("target_key_id", r.GetTargetKeyId())
	}
	return attrs
}

// recoverPanics turns a panic into an Internal status so one bad request
// cannot take the node down. The log gets the stack and, for runtime errors,
// their text; any other panic value is described by its type only, because
// it may hold request data.
func (s *Server) recoverPanics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			rid := RequestIDFromContext(ctx)
			s.log.LogAttrs(ctx, slog.LevelError, "panic serving request",
				slog.String("operation", operationName(info.FullMethod)),
				slog.String("request_id", rid),
				slog.String("panic", describePanic(v)),
				slog.String("stack", string(debug.Stack())))
			resp, err = nil, internalStatus(rid)
		}
	}()
	return handler(ctx, req)
}

func describePanic(v any) string {
	if re, ok := v.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("panic value of type %T", v)
}

// mapErrors applies the error mapping of errors.go to KeyManagement calls.
// Other services on the same server (Operator, health) choose their own
// statuses and pass through untouched.
func (s *Server) mapErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil && strings.HasPrefix(info.FullMethod, kmPrefix) {
		return nil, toStatus(ctx, s.log, operationName(info.FullMethod), err)
	}
	return resp, err
}

// rejectExpired refuses a call whose deadline passed (or whose caller went
// away) while it queued, before it costs an HSM operation or a Raft write.
func rejectExpired(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// operationName is the metrics and log name of a method: the bare method
// name for KeyManagement ("Encrypt"), "service/Method" for the others.
func operationName(fullMethod string) string {
	if name, ok := strings.CutPrefix(fullMethod, kmPrefix); ok {
		return name
	}
	return strings.TrimPrefix(fullMethod, "/")
}
