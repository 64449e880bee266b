package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

// HSM is the PKCS#11 backend. It is safe for concurrent use.
type HSM struct {
	cfg    Config
	mod    *module
	p      p11
	quirk  bool          // the token pads KWP input; see wrap.go
	perms  chan struct{} // one token per operation session the pool may have
	done   chan struct{} // closed when Close starts
	dkMu   sync.Mutex    // serialises DK creation, so two rotations cannot both make v n+1
	closer sync.Once

	mu     sync.Mutex
	closed bool
	gen    uint64 // bumped when a device error invalidates every session
	down   error  // why the token is unusable; nil while healthy
	slot   uint
	login  pkcs11.SessionHandle // the long-lived logged-in session
	idle   []pkcs11.SessionHandle
	dks    map[uint32]pkcs11.ObjectHandle // DK handles, valid for gen
	vers   []uint32                       // DK versions, valid for gen; nil until read

	transport transportPair // enrolment key pair (enrol.go)

	reconnectMu sync.Mutex
}

var _ hsm.HSM = (*HSM)(nil)

// KeyOps: the token runs key operations (keyops.go); a kind whose
// mechanisms it lacks gives hsm.ErrUnsupported on import.
func (h *HSM) KeyOps() (hsm.KeyOps, bool) { return h, true }

// Enroller: the token enrols (enrol.go).
func (h *HSM) Enroller() (hsm.Enroller, bool) { return h, true }

// DomainKeyRotator: the token makes DK versions (RotateDomainKey).
func (h *HSM) DomainKeyRotator() (hsm.DomainKeyRotator, bool) { return h, true }

// Token: the token's mechanism list (Mechanisms).
func (h *HSM) Token() (hsm.Token, bool) { return h, true }

// hooks let tests wrap the module to inject faults.
type hooks struct {
	wrap func(p11) p11
}

// Open loads the module (once per process), finds the token by label,
// checks its mechanisms and logs in. A token with no DK opens (a node
// awaiting enrolment): Health then reports hsm.ErrNoDomainKey until
// InitDomainKey or enrolment gives it one.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	return open(ctx, cfg, hooks{})
}

func open(ctx context.Context, cfg Config, hk hooks) (*HSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pkcs11: open token %q: %w", cfg.TokenLabel, err)
	}
	mod, err := acquireModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	if err := mod.claim(cfg.TokenLabel); err != nil {
		mod.release()
		return nil, err
	}
	h := &HSM{cfg: cfg, mod: mod, p: p11(mod.raw), done: make(chan struct{}), dks: make(map[uint32]pkcs11.ObjectHandle)}
	if hk.wrap != nil {
		h.p = hk.wrap(h.p)
	}
	if err := h.start(ctx); err != nil {
		mod.unclaim(cfg.TokenLabel)
		mod.release()
		return nil, fmt.Errorf("pkcs11: open token %q: %w", cfg.TokenLabel, err)
	}
	return h, nil
}

// start finds the token, checks mechanisms, sizes the pool, logs in and
// probes the token's RFC 5649 implementation.
func (h *HSM) start(ctx context.Context) error {
	slot, info, err := findToken(h.p, h.cfg.TokenLabel)
	if err != nil {
		return err
	}
	mechs, err := mechanisms(h.p, slot)
	if err != nil {
		return err
	}
	if err := checkMechanisms(mechs, h.cfg.TokenLabel); err != nil {
		return err
	}
	n := poolSize(h.cfg.MaxSessions, info.MaxSessionCount)
	if n < 1 {
		return fmt.Errorf("%w: token %q allows %d sessions; it needs at least 2", ErrInvalidConfig, h.cfg.TokenLabel, info.MaxSessionCount)
	}
	h.perms = make(chan struct{}, n)
	s, err := login(h.p, slot, h.cfg.TokenLabel, h.cfg.PIN)
	if err != nil {
		return err
	}
	h.slot, h.login = slot, s
	quirk, err := h.probeKWP(ctx)
	if err != nil {
		h.shutdown()
		return fmt.Errorf("probe %s: %w", mechName(pkcs11.CKM_AES_KEY_WRAP_PAD), err)
	}
	if quirk && !mechs[pkcs11.CKM_AES_CBC] {
		h.shutdown()
		return fmt.Errorf("%w: token %q pads key wrap input to 8 bytes, and lacks mechanism %s for the RFC 5649 fallback", ErrMechanism, h.cfg.TokenLabel, mechName(pkcs11.CKM_AES_CBC))
	}
	h.quirk = quirk
	return nil
}

// poolSize applies Config.MaxSessions against the token's limit, keeping
// one session for login. 0 and ~0 are PKCS#11's "no limit" and "unknown".
func poolSize(want int, tokenMax uint) int {
	limit := DefaultMaxSessions
	if want > 0 {
		limit = want
	}
	if tokenMax != pkcs11.CK_EFFECTIVELY_INFINITE && tokenMax != pkcs11.CK_UNAVAILABLE_INFORMATION && int(tokenMax)-1 < limit {
		limit = int(tokenMax) - 1
	}
	return limit
}

// withSession borrows an operation session for fn, waiting for one while
// ctx allows. A session or device error from fn drops the session, marks
// the token down (every other session is dropped as it comes back) and
// gives hsm.ErrUnavailable; the next call or Health reconnects.
func (h *HSM) withSession(ctx context.Context, op string, fn func(s pkcs11.SessionHandle) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	if h.isClosed() {
		return fmt.Errorf("pkcs11: %s: %w", op, hsm.ErrClosed)
	}
	select {
	case h.perms <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("pkcs11: %s: waiting for a session: %w", op, ctx.Err())
	case <-h.done:
		return fmt.Errorf("pkcs11: %s: %w", op, hsm.ErrClosed)
	}
	defer func() { <-h.perms }()
	if err := h.reconnect(); err != nil {
		return fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	s, gen, err := h.take()
	if err != nil {
		return fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	err = fn(s)
	if lost(err) {
		h.markDown(gen, err)
		_ = h.p.CloseSession(s)
		return fmt.Errorf("pkcs11: %s: %w: %w", op, hsm.ErrUnavailable, err)
	}
	h.give(s, gen)
	if err != nil {
		return fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	return nil
}

func (h *HSM) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// take returns an idle session or opens one; the caller holds a permit.
func (h *HSM) take() (pkcs11.SessionHandle, uint64, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return 0, 0, hsm.ErrClosed
	}
	gen, slot := h.gen, h.slot
	if n := len(h.idle); n > 0 {
		s := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return s, gen, nil
	}
	h.mu.Unlock()
	s, err := h.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		if lost(err) {
			h.markDown(gen, err)
		}
		return 0, 0, fmt.Errorf("%w: open session: %w", hsm.ErrUnavailable, err)
	}
	return s, gen, nil
}

// give returns a session to the pool, or closes it if a device error has
// made its generation stale meanwhile.
func (h *HSM) give(s pkcs11.SessionHandle, gen uint64) {
	h.mu.Lock()
	if gen == h.gen && !h.closed {
		h.idle = append(h.idle, s)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	_ = h.p.CloseSession(s)
}

// markDown records a session or device error once per generation.
func (h *HSM) markDown(gen uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen {
		return // someone already reported this outage
	}
	h.gen++
	h.down = err
	clear(h.dks)
	h.vers = nil
}

// lost reports errors after which the session, the login or the token
// itself cannot be trusted: drop everything and reconnect.
func lost(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch uint(e) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
		pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
		return true
	}
	return false
}

// reconnect brings a down token back: close what is left of the old
// generation, find the token again by label (its slot may have changed),
// and log in on a fresh session. It returns nil at once while healthy.
func (h *HSM) reconnect() error {
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down == nil {
		return nil
	}
	h.reconnectMu.Lock()
	defer h.reconnectMu.Unlock()
	h.mu.Lock()
	if h.down == nil { // another caller got there first
		h.mu.Unlock()
		return nil
	}
	if h.closed {
		h.mu.Unlock()
		return hsm.ErrClosed
	}
	stale, oldLogin := h.idle, h.login
	h.idle, h.login = nil, 0
	h.mu.Unlock()
	for _, s := range stale {
		_ = h.p.CloseSession(s)
	}
	if oldLogin != 0 {
		_ = h.p.CloseSession(oldLogin)
	}
	slot, _, err := findToken(h.p, h.cfg.TokenLabel)
	if err == nil {
		var s pkcs11.SessionHandle
		if s, err = login(h.p, slot, h.cfg.TokenLabel, h.cfg.PIN); err == nil {
			h.mu.Lock()
			h.slot, h.login, h.down = slot, s, nil
			h.gen++
			clear(h.dks)
			h.vers = nil
			h.mu.Unlock()
			return nil
		}
	}
	h.mu.Lock()
	h.down = err
	h.mu.Unlock()
	return fmt.Errorf("%w: reconnect to token %q: %w", hsm.ErrUnavailable, h.cfg.TokenLabel, err)
}

// Health probes the token: it reconnects if a device error took it down,
// checks that a session is still logged in, and that a DK is held.
func (h *HSM) Health(ctx context.Context) error {
	err := h.withSession(ctx, "health", func(s pkcs11.SessionHandle) error {
		info, err := h.p.GetSessionInfo(s)
		if err != nil {
			return err
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN) // login lost: reconnect
		}
		return nil
	})
	if err != nil {
		return err
	}
	vs, err := h.DomainKeyVersions(ctx)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return fmt.Errorf("pkcs11: health: token %q: %w", h.cfg.TokenLabel, hsm.ErrNoDomainKey)
	}
	return nil
}

// Close waits for every borrowed session to come back, then closes the
// sessions, logs out and releases the module (finalising it when this was
// its last user). Later calls fail with hsm.ErrClosed.
func (h *HSM) Close() error {
	first := false
	h.closer.Do(func() {
		first = true
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.done)
		// Taking every permit waits for every borrowed session.
		for range cap(h.perms) {
			h.perms <- struct{}{}
		}
		h.shutdown()
		h.mod.unclaim(h.cfg.TokenLabel)
		h.mod.release()
	})
	if !first {
		return fmt.Errorf("pkcs11: close: %w", hsm.ErrClosed)
	}
	return nil
}

// shutdown closes the idle sessions and logs out; no session is borrowed.
func (h *HSM) shutdown() {
	h.mu.Lock()
	idle, s := h.idle, h.login
	h.idle, h.login = nil, 0
	clear(h.dks)
	h.mu.Unlock()
	for _, i := range idle {
		_ = h.p.CloseSession(i)
	}
	if s != 0 {
		_ = h.p.Logout(s)
		_ = h.p.CloseSession(s)
	}
}

// Info names the backend, module and token; never the PIN.
func (h *HSM) Info() hsm.Info {
	wrap := "native RFC 5649"
	if h.quirk {
		wrap = "RFC 5649 via single-block CKM_AES_CBC for unaligned material (token pads KWP input)"
	}
	return hsm.Info{Backend: "pkcs11", Detail: fmt.Sprintf("module %s, token %q, wrap: %s", h.cfg.ModulePath, h.cfg.TokenLabel, wrap)}
}

// TokenLabel is the label of the token this HSM uses.
func (h *HSM) TokenLabel() string { return h.cfg.TokenLabel }

// MaxSessions is the size of the operation session pool.
func (h *HSM) MaxSessions() int { return cap(h.perms) }
