package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/hsm"
)

// Store is one node's keystore: every operation's rules, the ciphertext
// format and the key-material cache. Reads and cryptography are served from
// this node's fsm replica and HSM; writes go through the Applier, under the
// request id of the Request on their context. It is safe for concurrent use.
type Store struct {
	cfg   Config
	log   *slog.Logger
	state *fsm.FSM
	hsm   hsm.HSM
	ap    Applier
	cache *cache

	reaper  handleReaper // destroys HSM objects of evicted HSM-level versions
	gcmUses sync.Map     // cacheKey -> *atomic.Uint64: HSM-level encryptions per version
	// gcmWarnAt and gcmWarnEvery: see countGCM (tests lower them).
	gcmWarnAt, gcmWarnEvery uint64

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a Store over this node's fsm, HSM and Raft applier, and starts
// the scheduler loop (unless cfg.SchedulerInterval is negative). Close
// stops it.
func New(cfg Config, state *fsm.FSM, h hsm.HSM, ap Applier) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if state == nil || h == nil || ap == nil {
		return nil, fmt.Errorf("%w: fsm, hsm and applier are required", errInvalidConfig)
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "keystore"),
		state: state,
		hsm:   h,
		ap:    ap,
		cache: newCache(cfg.MaxCachedVersions),
		stop:  make(chan struct{}),

		gcmWarnAt:    gcmWarnAt,
		gcmWarnEvery: gcmWarnEvery,
	}
	if cfg.NodeID != "" {
		s.log = s.log.With("node", cfg.NodeID)
	}
	s.reaper.log = s.log.Warn
	// Any change to a key (disable, deletion, rotation, restore) drops its
	// unwrapped material; the next use unwraps again from the new state.
	state.Subscribe(s.cache.evict)
	if cfg.SchedulerInterval > 0 {
		s.wg.Add(1)
		go s.runScheduler()
	}
	return s, nil
}

// Close stops the scheduler, waits for it, wipes the key-material cache
// and destroys the HSM objects of HSM-level versions (waiting for that).
// The fsm and HSM belong to the caller and stay open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.cache.close()
		s.reaper.close()
	})
	return nil
}

func (s *Store) now() time.Time { return s.cfg.Now() }

// hsmErr maps an HSM failure: the caller's context passes through; a
// missing domain key, a failing or closed device, or an HSM object lost
// twice in a row is ErrUnavailable (another node may serve); anything else
// is ErrInternal. The detail is for
// logs: transport does not show it.
func hsmErr(op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, hsm.ErrNoDomainKey):
		return userErr(ErrUnavailable, "%s: this node's HSM does not hold the cluster domain key (not enrolled yet); retry on another node", op)
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed),
		errors.Is(err, hsm.ErrHandleInvalid):
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrInternal, err)
}
