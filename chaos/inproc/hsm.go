package inproc

import (
	"context"
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

// faultyHSM wraps h so that every call, the calls through its
// capabilities included (key operations, enrolment, domain-key rotation),
// first waits out a freeze and then fails while the switch says the HSM
// has failed. The result has exactly h's capabilities. Destroy is never
// held nor failed: cleanup must not hang a thaw.
func faultyHSM(h hsm.HSM, sw *hsmSwitch) hsm.HSM {
	return hsm.Intercept(h, func(ctx context.Context, op hsm.Op, call func(context.Context) error) error {
		if op != hsm.OpDestroy {
			if err := sw.check(ctx); err != nil {
				return err
			}
		}
		return call(ctx)
	})
}
