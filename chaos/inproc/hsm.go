package inproc

import (
	"context"
	"crypto"
	"fmt"
	"sync"

	"github.com/meridiankms/meridian/hsm"
)

// errInjected is what a failed HSM answers: a device failure.
var errInjected = fmt.Errorf("chaos: injected hsm failure: %w", hsm.ErrUnavailable)

// hsmSwitch is one node's HSM fault state. It outlives the node's restarts
// (each Start wraps the new HSM with the same switch), so a failure set
// before a restart still holds after it.
type hsmSwitch struct {
	mu     sync.Mutex
	failed bool
	held   chan struct{} // non-nil while frozen: calls wait for its close
}

func (s *hsmSwitch) setFailed(v bool) {
	s.mu.Lock()
	s.failed = v
	s.mu.Unlock()
}

func (s *hsmSwitch) hold() {
	s.mu.Lock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
	s.mu.Unlock()
}

func (s *hsmSwitch) release() {
	s.mu.Lock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
	s.mu.Unlock()
}

func (s *hsmSwitch) state() (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed, s.held != nil
}

// check waits while the HSM is held (a frozen process makes no progress)
// and then fails if the HSM is failed.
func (s *hsmSwitch) check(ctx context.Context) error {
	s.mu.Lock()
	held, failed := s.held, s.failed
	s.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			return fmt.Errorf("chaos: hsm held by a freeze: %w", ctx.Err())
		}
		s.mu.Lock()
		failed = s.failed
		s.mu.Unlock()
	}
	if failed {
		return errInjected
	}
	return nil
}

// faultyHSM passes every call, the optional interfaces included, through
// to h unless its switch says otherwise. The soft backend implements every
// optional interface, which is the only backend the harness uses.
type faultyHSM struct {
	h  hsm.HSM
	sw *hsmSwitch
}

var (
	_ hsm.HSM       = (*faultyHSM)(nil)
	_ hsm.KeyOps    = (*faultyHSM)(nil)
	_ hsm.Enroller  = (*faultyHSM)(nil)
	_ hsm.Describer = (*faultyHSM)(nil)
)

func (f *faultyHSM) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	if err := f.sw.check(ctx); err != nil {
		return nil, err
	}
	return f.h.DomainKeyVersions(ctx)
}

func (f *faultyHSM) CurrentDomainKeyVersion(ctx context.Context) (uint32, error) {
	if err := f.sw.check(ctx); err != nil {
		return 0, err
	}
	return f.h.CurrentDomainKeyVersion(ctx)
}

func (f *faultyHSM) Wrap(ctx context.Context, v uint32, m []byte) ([]byte, error) {
	if err := f.sw.check(ctx); err != nil {
		return nil, err
	}
	return f.h.Wrap(ctx, v, m)
}

func (f *faultyHSM) Unwrap(ctx context.Context, v uint32, w []byte) ([]byte, error) {
	if err := f.sw.check(ctx); err != nil {
		return nil, err
	}
	return f.h.Unwrap(ctx, v, w)
}

func (f *faultyHSM) Random(ctx context.Context, n int) ([]byte, error) {
	if err := f.sw.check(ctx); err != nil {
		return nil, err
	}
	return f.h.Random(ctx, n)
}

func (f *faultyHSM) Health(ctx context.Context) error {
	if err := f.sw.check(ctx); err != nil {
		return err
	}
	return f.h.Health(ctx)
}

func (f *faultyHSM) Close() error { return f.h.Close() }

func (f *faultyHSM) Info() hsm.Info {
	if d, ok := f.h.(hsm.Describer); ok {
		return d.Info()
	}
	return hsm.Info{Backend: "unknown"}
}

func (f *faultyHSM) enroller() (hsm.Enroller, error) {
	e, ok := f.h.(hsm.Enroller)
	if !ok {
		return nil, fmt.Errorf("chaos: wrapped hsm cannot enrol: %w", hsm.ErrUnavailable)
	}
	return e, nil
}

func (f *faultyHSM) TransportPublicKey(ctx context.Context) ([]byte, error) {
	e, err := f.enroller()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return e.TransportPublicKey(ctx)
}

func (f *faultyHSM) ExportDomainKeys(ctx context.Context, pub []byte) (*hsm.DomainKeyBundle, error) {
	e, err := f.enroller()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return e.ExportDomainKeys(ctx, pub)
}

func (f *faultyHSM) ImportDomainKeys(ctx context.Context, b *hsm.DomainKeyBundle) error {
	e, err := f.enroller()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return err
	}
	return e.ImportDomainKeys(ctx, b)
}

func (f *faultyHSM) keyOps() (hsm.KeyOps, error) {
	k, ok := f.h.(hsm.KeyOps)
	if !ok {
		return nil, fmt.Errorf("chaos: wrapped hsm has no key operations: %w", hsm.ErrUnavailable)
	}
	return k, nil
}

func (f *faultyHSM) ImportWrapped(ctx context.Context, v uint32, w []byte, kind hsm.KeyKind) (hsm.KeyHandle, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.ImportWrapped(ctx, v, w, kind)
}

func (f *faultyHSM) EncryptGCM(ctx context.Context, h hsm.KeyHandle, nonce, pt, aad []byte) ([]byte, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.EncryptGCM(ctx, h, nonce, pt, aad)
}

func (f *faultyHSM) DecryptGCM(ctx context.Context, h hsm.KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.DecryptGCM(ctx, h, nonce, sealed, aad)
}

func (f *faultyHSM) HMAC(ctx context.Context, h hsm.KeyHandle, msg []byte) ([]byte, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.HMAC(ctx, h, msg)
}

func (f *faultyHSM) Sign(ctx context.Context, h hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.Sign(ctx, h, hash, pss, digest)
}

func (f *faultyHSM) DecryptOAEP(ctx context.Context, h hsm.KeyHandle, hash crypto.Hash, ct []byte) ([]byte, error) {
	k, err := f.keyOps()
	if err == nil {
		err = f.sw.check(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k.DecryptOAEP(ctx, h, hash, ct)
}

func (f *faultyHSM) Destroy(ctx context.Context, h hsm.KeyHandle) error {
	k, err := f.keyOps()
	if err != nil {
		return err
	}
	return k.Destroy(ctx, h) // never held: cleanup must not hang a thaw
}
