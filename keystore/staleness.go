package keystore

import (
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Bounds of a key's max staleness. Below a second the bound would trip on
// ordinary heartbeat jitter; beyond 30 days it means nothing a partition
// would not already have decided.
const (
	minMaxStaleness = time.Second
	maxMaxStaleness = 30 * 24 * time.Hour
)

// checkMaxStaleness validates CreateKeyInput.MaxStaleness and returns it in
// whole milliseconds, as the fsm stores it (sub-millisecond parts are
// dropped: the bound is compared with heartbeat-driven ages).
func checkMaxStaleness(d time.Duration) (int64, error) {
	if d == 0 {
		return 0, nil
	}
	if d < minMaxStaleness || d > maxMaxStaleness {
		return 0, validationErr("max staleness is %v; must be 0 (no bound) or %v to %v (30 days)", d, minMaxStaleness, maxMaxStaleness)
	}
	return d.Milliseconds(), nil
}

// maxStaleness is a replicated key's bound; 0 means none.
func maxStaleness(k *fsmpb.Key) time.Duration {
	return time.Duration(k.GetMaxStalenessMs()) * time.Millisecond
}

// checkFresh refuses to serve a key with a staleness bound from a node
// that has not heard from the Raft leader within that bound (or ever): its
// replica may miss a disable or deletion the majority has already applied.
// It runs before the key's state is judged, because on a stale node that
// state is exactly what cannot be trusted. ErrUnavailable sends the client
// to a fresher node.
func (s *Store) checkFresh(k *fsmpb.Key) error {
	bound := maxStaleness(k)
	if bound <= 0 || s.cfg.Staleness == nil {
		return nil
	}
	age := s.cfg.Staleness()
	if age < 0 {
		return userErr(ErrUnavailable, "node %s is stale: it has not heard from a Raft leader, and key %s has max staleness %v",
			s.nodeName(), k.GetId(), bound)
	}
	if age > bound {
		return userErr(ErrUnavailable, "node %s is stale: last leader contact %v ago exceeds key %s's max staleness %v",
			s.nodeName(), roundAge(age), k.GetId(), bound)
	}
	return nil
}

// roundAge keeps an age readable: 3.2s, not 3.216540117s.
func roundAge(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func (s *Store) nodeName() string {
	if s.cfg.NodeID == "" {
		return "(unnamed)"
	}
	return s.cfg.NodeID
}

// checkCryptoReady refuses cryptography while the node's HSM is reported
// unhealthy, even for versions already unwrapped in the cache: a node whose
// HSM failed must send clients elsewhere (they route by health), not serve
// some keys and fail others.
func (s *Store) checkCryptoReady() error {
	if s.cfg.CryptoReady == nil {
		return nil
	}
	if err := s.cfg.CryptoReady(); err != nil {
		return userErr(ErrUnavailable, "node %s cannot serve cryptography: %v; retry on another node", s.nodeName(), err)
	}
	return nil
}
