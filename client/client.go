// Package client is the Go SDK for Meridian's gRPC API (meridian.v1.KeyManagement).
//
// A Client wraps every RPC with the behaviour a caller would otherwise have to
// re-implement: request ids on writes so retries are safe, bounded retries on
// Unavailable, typed errors carrying the AWS-style exception name, and the
// newest commit index seen (the consistency token). Routing is behind a small
// internal router so nearest-node selection and failover can replace today's
// "first reachable address" without changing the API.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Configuration errors returned by Config.Validate and New.
var (
	// ErrNoAddrs means Config.Addrs is empty.
	ErrNoAddrs = errors.New("no node addresses configured")
	// ErrNoTransportSecurity means neither TLS nor Insecure was chosen:
	// plaintext must be asked for explicitly.
	ErrNoTransportSecurity = errors.New("no TLS configuration given and Insecure not set")
	// ErrConflictingSecurity means both TLS and Insecure were set.
	ErrConflictingSecurity = errors.New("both TLS and Insecure set")
	// ErrNoReachableNode means no configured address answered within DialTimeout.
	ErrNoReachableNode = errors.New("no reachable node")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("client closed")
)

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// Addrs are node API addresses (host:port). Today the first one that
	// becomes reachable within DialTimeout serves every call.
	Addrs []string
	// DialTimeout bounds how long New waits for each address to connect.
	DialTimeout time.Duration
	// CallTimeout applies to a call (all its attempts together) whose ctx has
	// no deadline. Zero means no default deadline.
	CallTimeout time.Duration
	// Insecure allows plaintext gRPC. It must be set explicitly when TLS is nil,
	// so nobody sends key material in the clear by accident.
	Insecure bool
	// TLS configures transport security. Mutually exclusive with Insecure.
	TLS *tls.Config
	// MaxAttempts bounds the attempts per call, the first included (>= 1).
	MaxAttempts int
	// BackoffBase is the wait before the first retry; it doubles per retry.
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts.
	BackoffMax time.Duration
	// DialOptions are appended to the client's own options (tests, interceptors).
	DialOptions []grpc.DialOption
}

// DefaultConfig returns a Config for addrs with conservative timeouts and
// four attempts per call. Transport security is left for the caller to choose.
func DefaultConfig(addrs ...string) Config {
	return Config{
		Addrs:       addrs,
		DialTimeout: 5 * time.Second,
		CallTimeout: 30 * time.Second,
		MaxAttempts: 4,
		BackoffBase: 50 * time.Millisecond,
		BackoffMax:  time.Second,
	}
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return ErrNoAddrs
	case c.TLS == nil && !c.Insecure:
		return ErrNoTransportSecurity
	case c.TLS != nil && c.Insecure:
		return ErrConflictingSecurity
	case c.DialTimeout <= 0:
		return fmt.Errorf("dial timeout %v: must be positive", c.DialTimeout)
	case c.CallTimeout < 0:
		return fmt.Errorf("call timeout %v: must not be negative", c.CallTimeout)
	case c.MaxAttempts < 1:
		return fmt.Errorf("max attempts %d: must be at least 1", c.MaxAttempts)
	case c.BackoffBase < 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("backoff %v..%v: need 0 <= base <= max", c.BackoffBase, c.BackoffMax)
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("address %d is empty", i)
		}
	}
	return nil
}

// Client calls Meridian nodes. It is safe for concurrent use.
type Client struct {
	cfg        Config
	router     *router
	lastCommit atomic.Uint64
	closed     atomic.Bool
}

// New validates cfg and connects to the first address that becomes ready
// within cfg.DialTimeout (trying them in order), or returns ErrNoReachableNode
// with each address's failure.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.DialOptions...)
	var errs []error
	for _, addr := range cfg.Addrs {
		ep, err := dial(ctx, addr, cfg.DialTimeout, opts)
		if err == nil {
			return &Client{cfg: cfg, router: newRouter(ep)}, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNoReachableNode, errors.Join(errs...))
}

// dial connects to one address and waits until the connection is ready, so
// that New can skip addresses that do not answer.
func dial(ctx context.Context, addr string, timeout time.Duration, opts []grpc.DialOption) (*endpoint, error) {
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return &endpoint{addr: addr, conn: conn, api: apiv1.NewKeyManagementClient(conn)}, nil
		case connectivity.TransientFailure:
			// A refused connection lands here at once; move on to the next
			// address instead of waiting out the whole timeout.
			conn.Close()
			return nil, fmt.Errorf("dial %s: connection failed (is a node listening there?)", addr)
		}
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("dial %s: not ready after %v (last state %v): %w", addr, timeout, s, ctx.Err())
		}
	}
}

// Close releases every connection. Calls after Close fail with ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.router.close()
}

// LastCommitIndex is the highest commit index returned by any write made
// through this client: the consistency token a later request can carry.
func (c *Client) LastCommitIndex() uint64 { return c.lastCommit.Load() }

// observeCommit raises lastCommit to idx if idx is newer; concurrent writes
// can finish out of order, so it keeps the maximum, not the latest.
func (c *Client) observeCommit(idx uint64) {
	for {
		cur := c.lastCommit.Load()
		if idx <= cur || c.lastCommit.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// Addr is the address of the node calls are currently sent to.
func (c *Client) Addr() string { return c.router.pick().addr }
