package identity

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Source holds this process's TLS material (certificate, key, CA bundle)
// and hands out TLS configurations that read the current material at every
// handshake, so a reload applies to every new connection of every listener
// and dialer without rebuilding them. Existing connections keep the
// material they were made with.
//
// A Source has no goroutine of its own: Watch and ReloadOn run in the
// caller's and stop with its context.
type Source struct {
	cfg Config
	log *slog.Logger
	cur atomic.Pointer[material]

	// mu serialises reloads (a file event and a SIGHUP at once) so the
	// counters and the last error describe one sequence of attempts.
	mu       sync.Mutex
	reloads  uint64
	failures uint64
	lastErr  error
	lastLoad time.Time
}

// NewSource loads the files of cfg and returns a Source serving them. It
// fails if any file is missing or wrong: a node must not start with TLS
// material it cannot use.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := loadMaterial(cfg, cfg.Now())
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: cfg.Logger, lastLoad: cfg.Now()}
	s.cur.Store(m)
	s.logLoaded("loaded TLS material", m)
	return s, nil
}

// current is the material every handshake reads.
func (s *Source) current() *material { return s.cur.Load() }

// Reload re-reads the files. On success new handshakes use the new
// material at once; on failure the previous material stays in use and the
// error (naming the file and the problem) is returned and kept for Stats.
// The caller decides whether to log it.
func (s *Source) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.reloadLocked(false)
	return err
}

// reloadIfChanged reloads only when the files' bytes differ from the
// material in use, so that directory noise does not count as reloads.
func (s *Source) reloadIfChanged() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(true)
}

func (s *Source) reloadLocked(onlyIfChanged bool) (bool, error) {
	now := s.cfg.Now()
	m, err := loadMaterial(s.cfg, now)
	old := s.current()
	if err == nil && m.td != old.td {
		err = fmt.Errorf("%w: the new material's trust domain %s differs from %s; a trust domain cannot change without a restart", ErrLoad, m.td, old.td)
	}
	if err != nil {
		s.failures++
		s.lastErr = err
		return false, err
	}
	if onlyIfChanged && m.digest == old.digest {
		// A failed attempt may have preceded this one: the files are
		// consistent again, so the error no longer describes them.
		s.lastErr = nil
		return false, nil
	}
	s.cur.Store(m)
	s.reloads++
	s.lastErr = nil
	s.lastLoad = now
	s.logLoaded("reloaded TLS material", m)
	return true, nil
}

func (s *Source) logLoaded(msg string, m *material) {
	attrs := []any{slog.Int("cas", len(m.cas)), slog.String("trust_domain", m.td.String())}
	if m.cert != nil {
		attrs = append(attrs,
			slog.Any("identity", m.self),
			slog.String("serial", m.cert.Leaf.SerialNumber.String()),
			slog.Time("not_after", m.cert.Leaf.NotAfter))
	}
	s.log.Info(msg, attrs...)
}

// TrustDomain is the cluster's trust domain: node identities are checked
// against it.
func (s *Source) TrustDomain() spiffeid.TrustDomain { return s.current().td }

// Identity is who this process is by its current certificate; ok is false
// when the Source has no certificate.
func (s *Source) Identity() (p Principal, ok bool) {
	m := s.current()
	return m.self, m.cert != nil
}

// NotAfter is the current certificate's expiry (zero without certificate):
// the figure the certificate-expiry metric and alert read.
func (s *Source) NotAfter() time.Time {
	if m := s.current(); m.cert != nil {
		return m.cert.Leaf.NotAfter
	}
	return time.Time{}
}

// Stats describes the reloads so far, for metrics and status pages.
type Stats struct {
	// Reloads counts successful reloads since NewSource.
	Reloads uint64
	// Failures counts failed reload attempts (the material in use stayed).
	Failures uint64
	// LastError is the error of the latest attempt, nil if it succeeded.
	LastError error
	// LastLoad is when the material in use was loaded.
	LastLoad time.Time
	// NotAfter is the current certificate's expiry (zero without one).
	NotAfter time.Time
	// BundleNotAfter is the earliest expiry among the bundle's CAs, so an
	// alert can fire before a CA runs out as well as a certificate.
	BundleNotAfter time.Time
}

// Stats returns the current reload statistics.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	m := s.current() // under mu: the material LastLoad describes
	st := Stats{Reloads: s.reloads, Failures: s.failures, LastError: s.lastErr, LastLoad: s.lastLoad}
	s.mu.Unlock()
	if m.cert != nil {
		st.NotAfter = m.cert.Leaf.NotAfter
	}
	for _, ca := range m.cas {
		if st.BundleNotAfter.IsZero() || ca.NotAfter.Before(st.BundleNotAfter) {
			st.BundleNotAfter = ca.NotAfter
		}
	}
	return st
}
