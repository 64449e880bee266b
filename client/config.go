package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
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
	// ErrNotGRPC means an address answered, but in HTTP/1.1: it is some
	// HTTP endpoint (a node's metrics address, a web server), not a node's
	// gRPC API. New wraps it per seed; see also IsNotGRPC.
	ErrNotGRPC = errors.New("this is an HTTP endpoint (metrics?), not the gRPC API: it answered in HTTP/1.1")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("client closed")
)

// MinKeepaliveTime is the shortest client keepalive ping interval Meridian
// servers accept (their enforcement MinTime); pinging more often gets the
// connection closed with GOAWAY "too_many_pings".
const MinKeepaliveTime = 10 * time.Second

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// Addrs are seed node API addresses (host:port). New connects to the
	// first reachable one and asks it for the cluster's members; without
	// Members support (or with DisableDiscovery) the seeds are the nodes.
	Addrs []string
	// Region is the client's own region: its healthy nodes are preferred
	// over any other region's, whatever their RTT. Empty: RTT alone decides.
	Region string
	// DisableDiscovery pins the client to Addrs (no Members calls), e.g.
	// behind a load balancer whose nodes' own addresses are unreachable.
	DisableDiscovery bool
	// DialTimeout bounds how long New waits for each seed to connect, and
	// New's first discovery and RTT probes.
	DialTimeout time.Duration
	// CallTimeout applies to a call (all its attempts together) whose ctx has
	// no deadline. Zero means no default deadline.
	CallTimeout time.Duration
	// AttemptTimeout bounds one attempt of a data-plane call, so a hung or
	// black-holed node costs this much before the next node is tried instead
	// of the whole call deadline. Writes are not cut short (see DESIGN.md).
	// Zero: attempts are bounded only by the call's deadline.
	AttemptTimeout time.Duration
	// HedgeAfter, when positive, sends a data-plane call to the next-nearest
	// node too if the first has not answered after this long; the first
	// success wins. Data-plane calls change no state, so a duplicate is
	// harmless. Zero disables hedging.
	HedgeAfter time.Duration
	// RefreshInterval is how often the member list is fetched again (also
	// after failures, at most every MinRefreshGap).
	RefreshInterval time.Duration
	// ProbeInterval is how often every node's RTT and health are measured.
	ProbeInterval time.Duration
	// DownFor is how long a node that failed a call is skipped (unless no
	// other node is left). A failed probe keeps it out until a probe passes.
	DownFor time.Duration
	// DisableConsistencyToken stops sending LastCommitIndex as the
	// x-meridian-consistency-token header.
	DisableConsistencyToken bool
	// KeepaliveTime is the ping interval on idle connections (0: no pings).
	// It must be at least MinKeepaliveTime. KeepaliveTimeout is how long a
	// ping may go unanswered before the connection is considered lost.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// Insecure allows plaintext gRPC. It must be set explicitly when TLS is nil,
	// so nobody sends key material in the clear by accident.
	Insecure bool
	// TLS configures transport security. Mutually exclusive with Insecure.
	TLS *tls.Config
	// MaxAttempts bounds the attempts per call, the first and hedged ones
	// included (>= 1).
	MaxAttempts int
	// BackoffBase is the wait before the first retry; it doubles per retry.
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts.
	BackoffMax time.Duration
	// DialOptions are appended to the client's own options (tests, interceptors).
	DialOptions []grpc.DialOption
}

// MinRefreshGap is the least time between two failure-triggered refreshes,
// so a burst of failed calls does not become a burst of Members calls.
const MinRefreshGap = 500 * time.Millisecond

// DefaultConfig returns a Config for addrs with conservative timeouts and
// four attempts per call. Transport security is left for the caller to choose.
func DefaultConfig(addrs ...string) Config {
	return Config{
		Addrs:            addrs,
		DialTimeout:      5 * time.Second,
		CallTimeout:      30 * time.Second,
		AttemptTimeout:   2 * time.Second,
		RefreshInterval:  30 * time.Second,
		ProbeInterval:    10 * time.Second,
		DownFor:          5 * time.Second,
		KeepaliveTime:    30 * time.Second,
		KeepaliveTimeout: 10 * time.Second,
		MaxAttempts:      4,
		BackoffBase:      50 * time.Millisecond,
		BackoffMax:       time.Second,
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
	case c.CallTimeout < 0 || c.AttemptTimeout < 0 || c.HedgeAfter < 0:
		return fmt.Errorf("call timeout %v, attempt timeout %v, hedge after %v: must not be negative",
			c.CallTimeout, c.AttemptTimeout, c.HedgeAfter)
	case c.RefreshInterval <= 0 || c.ProbeInterval <= 0 || c.DownFor <= 0:
		return fmt.Errorf("refresh interval %v, probe interval %v, down for %v: must be positive",
			c.RefreshInterval, c.ProbeInterval, c.DownFor)
	case c.KeepaliveTime != 0 && c.KeepaliveTime < MinKeepaliveTime:
		return fmt.Errorf("keepalive time %v: servers refuse pings more often than every %v", c.KeepaliveTime, MinKeepaliveTime)
	case c.KeepaliveTime != 0 && c.KeepaliveTimeout <= 0:
		return fmt.Errorf("keepalive timeout %v: must be positive when keepalive is on", c.KeepaliveTimeout)
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

// probeTimeout bounds one RTT probe or Members call made in the background.
func (c Config) probeTimeout() time.Duration {
	if c.AttemptTimeout > 0 {
		return min(c.AttemptTimeout, c.DialTimeout)
	}
	return c.DialTimeout
}
