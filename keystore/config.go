package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Applier replicates a command through Raft. cluster.Node implements it:
// Apply forwards to the leader when needed, is safe to retry thanks to the
// command's request id, and returns only after this node's fsm has applied
// the result's index (so a read right after a write sees it).
type Applier interface {
	Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error)
	// IsLeader gates the scheduler: only the leader proposes due deletions
	// and rotations.
	IsLeader() bool
}

// Config configures a Store. Zero values take DefaultConfig's values.
type Config struct {
	// Logger receives the keystore's logs (nil: discard). Key ids and
	// versions are logged; key material never is.
	Logger *slog.Logger
	// NodeID names this node in logs.
	NodeID string
	// SchedulerInterval is how often the leader looks for due deletions and
	// rotations. Negative disables the background loop (RunDueTasks still
	// works).
	SchedulerInterval time.Duration
	// SchedulerTimeout bounds one scheduler pass.
	SchedulerTimeout time.Duration
	// CryptoReady, when set, is asked before every cryptographic operation;
	// a non-nil answer (e.g. "hsm unavailable") refuses it with
	// ErrUnavailable. Its text is shown to the caller: keep it free of
	// internal detail. It must be cheap (the node reads a cached flag).
	CryptoReady func() error
	// Now is the clock written into commands; tests inject one.
	Now func() time.Time
	// NewRequestID makes the request id of a write whose caller gave none.
	NewRequestID func() string
	// MaxCachedVersions bounds the unwrapped key versions held in memory;
	// beyond it an arbitrary key's versions are evicted (and wiped).
	MaxCachedVersions int
	// RotateRetries bounds how often RotateKeyOnDemand recomputes the
	// version after losing a race with another rotation.
	RotateRetries int
	// Staleness reports how long ago this node last heard from the Raft
	// leader: 0 on the leader, negative if it never has. Keys with a max
	// staleness are refused while it exceeds their bound. nil: this node
	// is never stale (single-node setups and tests).
	Staleness func() time.Duration
	// RewrapBatch is how many key versions one REWRAP_VERSIONS command of
	// RotateDomainKey carries (at most fsm.MaxRewrapBatch).
	RewrapBatch int
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Logger:            slog.New(slog.DiscardHandler),
		SchedulerInterval: time.Minute,
		SchedulerTimeout:  30 * time.Second,
		Now:               time.Now,
		NewRequestID:      newUUID,
		MaxCachedVersions: 100_000,
		RotateRetries:     5,
		RewrapBatch:       100,
	}
}

// errInvalidConfig marks Config.Validate failures.
var errInvalidConfig = errors.New("invalid keystore config")

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.SchedulerInterval == 0 {
		c.SchedulerInterval = d.SchedulerInterval
	}
	if c.SchedulerTimeout == 0 {
		c.SchedulerTimeout = d.SchedulerTimeout
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.NewRequestID == nil {
		c.NewRequestID = d.NewRequestID
	}
	if c.MaxCachedVersions == 0 {
		c.MaxCachedVersions = d.MaxCachedVersions
	}
	if c.RotateRetries == 0 {
		c.RotateRetries = d.RotateRetries
	}
	if c.RewrapBatch == 0 {
		c.RewrapBatch = d.RewrapBatch
	}
	return c
}

// Validate reports a Config that cannot work (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.SchedulerTimeout < 0:
		return fmt.Errorf("%w: scheduler timeout %v is negative", errInvalidConfig, c.SchedulerTimeout)
	case c.MaxCachedVersions < 0:
		return fmt.Errorf("%w: max cached versions %d is negative", errInvalidConfig, c.MaxCachedVersions)
	case c.RotateRetries < 0:
		return fmt.Errorf("%w: rotate retries %d is negative", errInvalidConfig, c.RotateRetries)
	case c.RewrapBatch < 0 || c.RewrapBatch > fsm.MaxRewrapBatch:
		return fmt.Errorf("%w: re-wrap batch %d; must be 1-%d", errInvalidConfig, c.RewrapBatch, fsm.MaxRewrapBatch)
	}
	return nil
}

// newUUID returns a random (version 4) UUID in its canonical form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexdigits[c>>4], hexdigits[c&0x0f]
		j += 2
	}
	return string(out)
}
