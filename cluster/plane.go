package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PlaneObserver records one finished cluster-plane call: its method
// ("meridian.cluster.v1.Cluster/Apply"), status code and duration. The
// node wiring turns it into metrics of their own, apart from the client
// API's request metrics.
type PlaneObserver func(method string, code codes.Code, elapsed time.Duration)

// NewServer builds the gRPC server of a node's cluster plane, the
// node-to-node listener (--cluster-addr) that Node.Register's services are
// served on. Its interceptor chain is the cluster plane's own, never the
// client API's (request ids, consistency waits, error mapping and client
// metrics belong there): calls are observed (when observe is set) and a
// panicking handler answers Internal instead of taking the node down. opts
// add server options: the transport credentials (the wiring's mutual TLS
// that only node certificates pass; none under --insecure) and limits.
func NewServer(log *slog.Logger, observe PlaneObserver, opts ...grpc.ServerOption) *grpc.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &plane{log: log.With("component", "cluster-plane"), observe: observe}
	opts = append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(p.observeCalls, p.recoverPanics)}, opts...)
	return grpc.NewServer(opts...)
}

type plane struct {
	log     *slog.Logger
	observe PlaneObserver
}

func (p *plane) observeCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if p.observe == nil {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	p.observe(strings.TrimPrefix(info.FullMethod, "/"), status.Code(err), time.Since(start))
	return resp, err
}

// recoverPanics answers a panicking call with Internal. The log gets the
// stack and, for runtime errors, their text; another panic value only by
// type, as it may hold request data (a bundle, a transport key).
func (p *plane) recoverPanics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			what := fmt.Sprintf("panic value of type %T", v)
			if re, ok := v.(runtime.Error); ok {
				what = re.Error()
			}
			p.log.LogAttrs(ctx, slog.LevelError, "panic serving a cluster-plane call",
				slog.String("method", info.FullMethod), slog.String("panic", what), slog.String("stack", string(debug.Stack())))
			resp, err = nil, status.Error(codes.Internal, "internal error serving "+info.FullMethod+"; see the node's log")
		}
	}()
	return handler(ctx, req)
}
