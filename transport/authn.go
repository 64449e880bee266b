package transport

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiankms/meridian/identity"
)

// authenticate puts the caller's Principal in the request context: the
// verified client certificate of a TLS connection, or the anonymous
// Principal (plaintext, or TLS without a client certificate). Every later
// layer (authorization, audit, rate limits) reads identity.FromContext;
// a context without a Principal means a call skipped this interceptor,
// which those layers must refuse. It runs right after the request id, so
// the access log and every refusal can name the caller.
func (s *Server) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.withPrincipal(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authenticateStream is authenticate for streaming calls (the domain-key
// rotation, health watches).
func (s *Server) authenticateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.withPrincipal(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
}

func (s *Server) withPrincipal(ctx context.Context, method string) (context.Context, error) {
	p, err := identity.FromPeer(ctx)
	if err != nil {
		// A certificate the handshake did not verify names nobody; with
		// the node's TLS policies this cannot happen, so it is a
		// misconfiguration worth a log line, and the caller learns only
		// that it was not authenticated.
		s.log.LogAttrs(ctx, slog.LevelWarn, "refused an unauthenticated call",
			slog.String("operation", operationName(method)), slog.Any("err", err))
		return ctx, status.Error(codes.Unauthenticated, "the client certificate could not be verified")
	}
	return identity.NewContext(ctx, p), nil
}

// principalStream carries the authenticated context to a stream's handler.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (p *principalStream) Context() context.Context { return p.ctx }
