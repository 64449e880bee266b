// Package workload runs the chaos suite's clients: concurrent callers, each
// through a nearest-node client of its region, making a configurable mix of
// control-plane and data-plane calls at a target rate, and recording every
// call (invoke time, answer, complete time, outcome) into a
// history.Recorder for the checker.
package workload

import (
	"errors"
	"fmt"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// ErrConfig marks an invalid workload configuration.
var ErrConfig = errors.New("workload: invalid config")

// Config describes one workload run.
type Config struct {
	// Regions are the clients' regions; clients are spread over them in
	// turn, each through a nearest-node client of its region.
	Regions []string
	// ClientConfig returns the client configuration for a region (the
	// harness's ClientConfig); the workload sets its timeouts on top.
	ClientConfig func(region string) client.Config
	// Clients is the number of concurrent callers (default 2 per region).
	Clients int
	// Rate is the target of calls per second over all callers (default 50).
	Rate float64
	// Duration bounds the run; MaxOps bounds the number of calls (0: no
	// bound). The run stops at whichever comes first, or when ctx ends.
	Duration time.Duration
	MaxOps   int
	// ControlFraction is the share of calls that are control-plane
	// (default 0.2); the rest are data-plane calls on the hot keys.
	ControlFraction float64
	// HotKeys is the number of symmetric keys the data plane uses (default 2).
	HotKeys int
	// MaxControlKeys caps the pool of keys the control plane churns
	// (default 6): few keys, so concurrent calls collide on them.
	MaxControlKeys int
	// Seed makes the mix of calls reproducible (the cluster's answers are not).
	Seed int64
	// CallTimeout bounds one call, all its attempts (default 5 s);
	// AttemptTimeout bounds one attempt of a data-plane call (default 1 s).
	CallTimeout, AttemptTimeout time.Duration
	// Observe, if set, is called with every completed op (from the
	// callers' goroutines; keep it quick).
	Observe func(op history.Op)
	// ObserveInvoke, if set, is called with every op as it is invoked,
	// before the call is sent (no output, outcome or completion yet).
	ObserveInvoke func(op history.Op)
	// Recorder receives every call (required).
	Recorder *history.Recorder
}

func (c *Config) setDefaults() {
	if c.Clients == 0 {
		c.Clients = 2 * len(c.Regions)
	}
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.ControlFraction == 0 {
		c.ControlFraction = 0.2
	}
	if c.HotKeys == 0 {
		c.HotKeys = 2
	}
	if c.MaxControlKeys == 0 {
		c.MaxControlKeys = 6
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = time.Second
	}
}

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	c.setDefaults()
	switch {
	case len(c.Regions) == 0:
		return fmt.Errorf("%w: no regions", ErrConfig)
	case c.ClientConfig == nil:
		return fmt.Errorf("%w: no client config", ErrConfig)
	case c.Recorder == nil:
		return fmt.Errorf("%w: no recorder", ErrConfig)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration %v must be positive", ErrConfig, c.Duration)
	case c.Clients < 1 || c.Clients > 1000:
		return fmt.Errorf("%w: clients %d: want 1..1000", ErrConfig, c.Clients)
	case c.Rate <= 0 || c.Rate > 100000:
		return fmt.Errorf("%w: rate %v: want (0, 100000] calls/s", ErrConfig, c.Rate)
	case c.MaxOps < 0:
		return fmt.Errorf("%w: max ops %d is negative", ErrConfig, c.MaxOps)
	case c.ControlFraction < 0 || c.ControlFraction > 1:
		return fmt.Errorf("%w: control fraction %v: want [0, 1]", ErrConfig, c.ControlFraction)
	case c.HotKeys < 1 || c.HotKeys > 100 || c.MaxControlKeys < 1 || c.MaxControlKeys > 1000:
		return fmt.Errorf("%w: hot keys %d, control keys %d: want 1..100 and 1..1000", ErrConfig, c.HotKeys, c.MaxControlKeys)
	case c.CallTimeout < 0 || c.AttemptTimeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	return nil
}

// tune sets the client timeouts the chaos workload relies on: short
// attempts and quick re-routing, so a dead or frozen node costs an
// attempt, not a call.
func (c *Config) tune(cfg client.Config, region string) client.Config {
	cfg.Region = region
	cfg.CallTimeout = c.CallTimeout
	cfg.AttemptTimeout = c.AttemptTimeout
	cfg.DialTimeout = min(max(cfg.DialTimeout, time.Second), 5*time.Second)
	cfg.RefreshInterval, cfg.DownFor, cfg.ProbeInterval = time.Second, time.Second, time.Second
	if cfg.MaxAttempts < 4 {
		cfg.MaxAttempts = 4
	}
	cfg.BackoffBase, cfg.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	return cfg
}
