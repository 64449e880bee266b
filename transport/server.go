// Package transport serves the meridian.v1.KeyManagement gRPC API over a
// keystore.Service: it converts api messages to keystore calls, maps errors to gRPC
// statuses in one place, and owns the interceptors (request ids, panic
// recovery, deadlines, consistency tokens, metrics, access log), the Members
// RPC over an injected membership view, the health and reflection services
// and the metrics HTTP endpoint. See DESIGN.md.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// Errors returned by this package's constructors.
var (
	// ErrInvalidConfig wraps every Config.Validate failure.
	ErrInvalidConfig = errors.New("invalid transport config")
	errNilRegisterer = fmt.Errorf("nil prometheus.Registerer: %w", ErrInvalidConfig)
)

const (
	// minMsgSize is the floor for the message limits: well above the
	// largest valid request (a ReEncrypt of a 4 KiB plaintext's ciphertext
	// with two full encryption contexts) so no valid call is refused.
	minMsgSize = 64 << 10
	maxMsgSize = 64 << 20
)

// Config configures the gRPC server. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// ListenAddr is the gRPC API's host:port. The wiring opens the listener
	// and passes it to Serve, so tests can use 127.0.0.1:0.
	ListenAddr string
	// MetricsListenAddr is the host:port of /metrics, /healthz and /readyz,
	// kept apart from the API so scrapes and probes never compete with, or
	// get exposed alongside, key operations. Empty disables it.
	MetricsListenAddr string
	// MaxRecvMsgSize caps a request's encoded size. gRPC refuses a larger
	// message with ResourceExhausted before unmarshalling it, so garbage
	// costs no decoding. Default 1 MiB.
	MaxRecvMsgSize int
	// MaxSendMsgSize caps a response (a 1000-entry listing is ~100 KiB).
	// Default 4 MiB.
	MaxSendMsgSize int
	// KeepaliveMinTime: a client that pings more often is disconnected
	// (GOAWAY "too_many_pings"); clients must keep their ping interval at or
	// above it. Default 10 s.
	KeepaliveMinTime time.Duration
	// KeepalivePermitWithoutStream allows client pings on idle connections,
	// which SDK clients use to keep warm connections to several nodes.
	KeepalivePermitWithoutStream bool
	// KeepaliveTime: the server pings a connection idle this long to find
	// dead peers; KeepaliveTimeout is how long it waits for the answer.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// GracefulStopTimeout bounds how long Stop waits for in-flight calls
	// before cutting connections.
	GracefulStopTimeout time.Duration
	// TLS, when set, serves TLS (and mTLS if it asks for client certs).
	// nil serves plaintext: whether that is allowed is the caller's call
	// (the CLI demands --insecure).
	TLS *tls.Config
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		ListenAddr:                   "127.0.0.1:7400",
		MetricsListenAddr:            "127.0.0.1:7401",
		MaxRecvMsgSize:               1 << 20,
		MaxSendMsgSize:               4 << 20,
		KeepaliveMinTime:             10 * time.Second,
		KeepalivePermitWithoutStream: true,
		KeepaliveTime:                2 * time.Minute,
		KeepaliveTimeout:             20 * time.Second,
		GracefulStopTimeout:          10 * time.Second,
	}
}

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("listen address %q: %v: %w", c.ListenAddr, err, ErrInvalidConfig)
	}
	if c.MetricsListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListenAddr); err != nil {
			return fmt.Errorf("metrics listen address %q: %v: %w", c.MetricsListenAddr, err, ErrInvalidConfig)
		}
	}
	if c.MaxRecvMsgSize < minMsgSize || c.MaxRecvMsgSize > maxMsgSize {
		return fmt.Errorf("max receive message size %d outside %d-%d: %w", c.MaxRecvMsgSize, minMsgSize, maxMsgSize, ErrInvalidConfig)
	}
	if c.MaxSendMsgSize < minMsgSize || c.MaxSendMsgSize > maxMsgSize {
		return fmt.Errorf("max send message size %d outside %d-%d: %w", c.MaxSendMsgSize, minMsgSize, maxMsgSize, ErrInvalidConfig)
	}
	if c.KeepaliveMinTime <= 0 || c.KeepaliveTime <= 0 || c.KeepaliveTimeout <= 0 {
		return fmt.Errorf("keepalive min time %s, time %s, timeout %s must all be positive: %w",
			c.KeepaliveMinTime, c.KeepaliveTime, c.KeepaliveTimeout, ErrInvalidConfig)
	}
	if c.GracefulStopTimeout <= 0 {
		return fmt.Errorf("graceful stop timeout %s must be positive: %w", c.GracefulStopTimeout, ErrInvalidConfig)
	}
	return nil
}

// Option customises a Server.
type Option func(*Server)

// WithLogger sets the logger for access logs (Debug), panics and internal
// errors. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithMetrics records request metrics into m. Default: none.
func WithMetrics(m *Metrics) Option {
	return func(s *Server) { s.metrics = m }
}

// Server is a node's gRPC server: KeyManagement, health and reflection, and
// whatever else the wiring registers on GRPC() before Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	grpc    *grpc.Server
	health  *health.Server
	members Membership    // nil: Members answers Unimplemented
	waiter  AppliedWaiter // nil: consistency tokens are not waited for
	maxWait time.Duration
	nodeID  string
	// operator serves meridian.v1.Operator when set (WithOperator).
	operator *operatorService
}

// NewServer builds the server and registers KeyManagement over ks, the
// health service (NOT_SERVING until SetServing(true)) and reflection.
func NewServer(cfg Config, ks keystore.Service, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ks == nil {
		return nil, fmt.Errorf("nil keystore.Service: %w", ErrInvalidConfig)
	}
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), health: health.NewServer()}
	for _, o := range opts {
		o(s)
	}
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(cfg.MaxSendMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: cfg.KeepalivePermitWithoutStream,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		grpc.ChainUnaryInterceptor(s.unaryInterceptors()...),
		grpc.ChainStreamInterceptor(s.authenticateStream),
	}
	if cfg.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(gopts...)
	apiv1.RegisterKeyManagementServer(s.grpc, &service{ks: ks, members: s.members})
	if s.operator != nil {
		apiv1.RegisterOperatorServer(s.grpc, s.operator.bind(s))
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.SetServing(false)
	return s, nil
}

// GRPC returns the underlying server so the wiring can register more
// client-facing services before Serve. They get the same interceptors
// except error mapping, which is KeyManagement's alone. Node-to-node
// services never go here: they have the cluster plane's own listener and
// server (cluster.NewServer), which clients cannot reach.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// SetServing sets the gRPC health status of the server ("") and of
// meridian.v1.KeyManagement. The wiring calls it as readiness changes (a
// leader is known, the HSM answers); after Stop it has no effect.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(apiv1.KeyManagement_ServiceDesc.ServiceName, st)
}

// Serve accepts connections on lis until Stop; it then returns nil.
func (s *Server) Serve(lis net.Listener) error {
	return s.grpc.Serve(lis)
}

// Stop marks the server NOT_SERVING, lets in-flight calls finish for up to
// GracefulStopTimeout (or until ctx ends), then closes every connection.
func (s *Server) Stop(ctx context.Context) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.GracefulStopTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	case <-ctx.Done():
	}
	s.log.Warn("graceful stop cut short; closing open connections",
		slog.Duration("timeout", s.cfg.GracefulStopTimeout))
	s.grpc.Stop()
	<-done
}
