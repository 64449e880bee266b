// Package hsmfault is the one fault-injecting HSM decorator: node tests
// and the in-process chaos harness (FailHSM, Freeze) both wrap a node's
// HSM with Wrap, through node.Config.HSMWrapper, and drive it with a
// Switch. It is an hsm.Intercept, so every call is subject to the faults,
// those through the capabilities included (key operations, enrolment,
// domain-key rotation, mechanisms), and the result has exactly the
// backend's capabilities. It imports no testing code: the chaos harness is
// linked into the meridian binary.
package hsmfault

import (
	"context"
	"fmt"
	"sync"

	"github.com/meridiankms/meridian/hsm"
)

// ErrInjected is what a failed HSM answers: a device failure
// (hsm.ErrUnavailable), the kind SoftHSM cannot be made to produce on
// demand.
var ErrInjected = fmt.Errorf("injected hsm failure: %w", hsm.ErrUnavailable)

// Switch is one node's HSM fault state. It outlives the HSM it drives: a
// harness wraps each start's new HSM with the same Switch, so a failure
// set before a restart still holds after it. The zero value passes every
// call through.
type Switch struct {
	mu     sync.Mutex
	failed bool
	held   chan struct{} // non-nil while held: calls wait for its close
}

// Fail makes every call fail with ErrInjected (true) or work again.
func (s *Switch) Fail(fail bool) {
	s.mu.Lock()
	s.failed = fail
	s.mu.Unlock()
}

// Hold makes every call wait until Release or its context's end, as a
// SIGSTOPped process's HSM calls make no progress.
func (s *Switch) Hold() {
	s.mu.Lock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
	s.mu.Unlock()
}

// Release lets held calls (and later ones) go on.
func (s *Switch) Release() {
	s.mu.Lock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
	s.mu.Unlock()
}

// State reports whether the switch fails and holds calls.
func (s *Switch) State() (failed, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed, s.held != nil
}

// check waits while calls are held and then fails if the HSM is failed.
func (s *Switch) check(ctx context.Context) error {
	s.mu.Lock()
	held, failed := s.held, s.failed
	s.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			return fmt.Errorf("hsm call held: %w", ctx.Err())
		}
		failed, _ = s.State()
	}
	if failed {
		return ErrInjected
	}
	return nil
}

// Wrap returns h with every call first waiting out a Hold and then failing
// while the Switch is failed, without reaching h. Destroy is never held
// nor failed: cleanup must neither hang a thaw nor leak a handle. Info and
// Close pass straight through (hsm.Intercept).
func Wrap(h hsm.HSM, s *Switch) hsm.HSM {
	return hsm.Intercept(h, func(ctx context.Context, op hsm.Op, call func(context.Context) error) error {
		if op != hsm.OpDestroy {
			if err := s.check(ctx); err != nil {
				return err
			}
		}
		return call(ctx)
	})
}
