// Package client is the Go SDK for Meridian's gRPC API (meridian.v1.KeyManagement).
//
// A Client wraps every RPC with the behaviour a caller would otherwise have to
// re-implement: discovery of the cluster from any seed address, routing to
// the nearest healthy node (own region first, then lowest measured RTT),
// failover with bounded retries, optional hedging of data-plane calls,
// request ids on writes so retries are safe, typed errors carrying the
// AWS-style exception name, and the newest commit index seen (the
// consistency token), sent with every call so a key created through one
// region is usable at once through another.
package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// ConsistencyTokenHeader is the request metadata key carrying the newest
// commit index the client has seen; a node answers only once it has applied
// at least that index (or Unavailable, and the client tries another node).
const ConsistencyTokenHeader = "x-meridian-consistency-token"

// reconnectMaxDelay caps gRPC's reconnect backoff (default two minutes), so a
// node that comes back is reachable again within a probe interval or so.
const reconnectMaxDelay = 5 * time.Second

// Client calls Meridian nodes. It is safe for concurrent use.
type Client struct {
	cfg        Config
	opts       []grpc.DialOption
	router     *router
	lastCommit atomic.Uint64
	closed     atomic.Bool
	kick       chan struct{} // a failed call asks the background loop to refresh
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// New validates cfg, connects to the first seed that becomes ready within
// cfg.DialTimeout (trying them in order; ErrNoReachableNode with each
// seed's failure if none does), learns the members from it, measures the
// RTT to each, and starts the background refresh and probing that Close
// stops. A seed without the Members RPC makes the configured addresses the
// node set.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	c := &Client{cfg: cfg, opts: dialOptions(cfg), kick: make(chan struct{}, 1)}
	c.router = newRouter(cfg.Region, c.dial)
	var seed *node
	var errs []error
	for _, addr := range cfg.Addrs {
		n, err := c.dialReady(ctx, addr)
		if err == nil {
			seed = n
			break
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if seed == nil {
		return nil, fmt.Errorf("%w: %w", ErrNoReachableNode, errors.Join(errs...))
	}
	c.router.setStatic(cfg.Addrs, seed)

	ictx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if !cfg.DisableDiscovery {
		var errs []error
		c.tryMembers(ictx, seed.api, &errs) // Unimplemented: an older server, keep the seeds
	}
	c.probeAll(ictx, initialProbeSamples)

	bg, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.wg.Go(func() { c.background(bg) })
	return c, nil
}

func dialOptions(cfg Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = reconnectMaxDelay
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: cfg.DialTimeout}),
	}
	if cfg.KeepaliveTime > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveTime,
			Timeout:             cfg.KeepaliveTimeout,
			PermitWithoutStream: true, // keep idle connections to far nodes warm for failover
		}))
	}
	return append(opts, cfg.DialOptions...)
}

// dial makes a lazy connection: nothing is sent until it is used or warmed.
func (c *Client) dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, c.opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// dialReady connects to one seed and waits until the connection is ready, so
// that New can skip seeds that do not answer.
func (c *Client) dialReady(ctx context.Context, addr string) (*node, error) {
	conn, err := c.dial(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return newNode(addr, conn), nil
		case connectivity.TransientFailure:
			// A refused connection lands here at once; move on to the next
			// address instead of waiting out the whole timeout.
			err := dialFailure(ctx, conn)
			conn.Close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("dial %s: not ready after %v (last state %v): %w", addr, c.cfg.DialTimeout, s, ctx.Err())
		}
	}
}

// dialFailure says why conn, in TRANSIENT_FAILURE, failed to connect.
// gRPC keeps the reason to itself except in the status of a call, so it
// makes one: a fail-fast health check fails at once with it, sending
// nothing (the connection is down).
func dialFailure(ctx context.Context, conn *grpc.ClientConn) error {
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if IsNotGRPC(err) {
		return ErrNotGRPC
	}
	reason := ""
	if st, ok := status.FromError(err); ok && err != nil {
		// "connection error: desc = \"transport: Error while dialing: dial tcp ...: connection refused\""
		reason = st.Message()
		reason = strings.TrimPrefix(reason, "connection error: desc = ")
		reason = strings.Trim(reason, `"`)
		reason = strings.TrimPrefix(reason, "transport: Error while dialing: ")
	}
	if reason == "" {
		return errConnFailed
	}
	return fmt.Errorf("%w (is a node listening there?): %s", errConnFailed, reason)
}

// Close stops discovery and probing, waits for them, and releases every
// connection. Calls after Close fail with ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.stop()
	c.wg.Wait()
	return c.router.close()
}

// LastCommitIndex is the highest commit index returned by any write made
// through this client: the consistency token later requests carry.
func (c *Client) LastCommitIndex() uint64 { return c.lastCommit.Load() }

// observeCommit raises lastCommit to idx if idx is newer; concurrent writes
// can finish out of order, so it keeps the maximum, not the latest.
// ObserveCommitIndex raises the consistency token the client sends to idx
// (never lowers it): hand it a commit index learnt elsewhere, e.g. from
// another process that made a write, so this client's calls see that write.
func (c *Client) ObserveCommitIndex(idx uint64) { c.observeCommit(idx) }

func (c *Client) observeCommit(idx uint64) {
	for {
		cur := c.lastCommit.Load()
		if idx <= cur || c.lastCommit.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// Addr is the address of the node the next call would be sent to.
func (c *Client) Addr() string {
	v := c.router.current()
	if i := v.pick(nil, time.Now().UnixNano()); i >= 0 {
		return v.routes[i].n.addr
	}
	return ""
}

// Nodes lists the nodes the client routes to, nearest first.
func (c *Client) Nodes() []NodeStatus { return c.router.snapshot() }

// markDown keeps n out of rotation for DownFor and asks for a refresh, since
// a failing node often means the membership changed.
func (c *Client) markDown(n *node) {
	n.downUntil.Store(time.Now().Add(c.cfg.DownFor).UnixNano())
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
