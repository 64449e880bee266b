package hsmfault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmfault"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

// With the switch off the fault wrapper is invisible: the capabilities
// are the backend's and every call reaches it unchanged.
func TestFaultyHSMForwardsHonestly(t *testing.T) {
	hsmtest.RunDecoratorContract(t, func(_ *testing.T, h hsm.HSM) hsm.HSM { return hsmfault.Wrap(h, &hsmfault.Switch{}) })
}

// A failed HSM fails every call, those through its capabilities included
// (key operations, enrolment, DK rotation, mechanisms), without reaching
// the backend; Destroy alone still reaches it.
func TestFaultyHSMFailsEveryCall(t *testing.T) {
	sw := &hsmfault.Switch{}
	sw.Fail(true)
	for _, c := range hsmtest.Calls {
		s := hsmtest.NewStub()
		_, err := c.Do(context.Background(), hsmfault.Wrap(s, sw))
		if c.Op == hsm.OpDestroy {
			if err != nil || len(s.Calls()) != 1 {
				t.Errorf("Destroy while failed: err %v, reached the HSM %v; want it passed through", err, s.Calls())
			}
			continue
		}
		if !errors.Is(err, hsm.ErrUnavailable) || !errors.Is(err, hsmfault.ErrInjected) {
			t.Errorf("%s while failed: err = %v, want the injected failure", c.Op, err)
		}
		if calls := s.Calls(); len(calls) != 0 {
			t.Errorf("%s while failed reached the HSM: %v", c.Op, calls)
		}
	}
}

// A frozen HSM holds every call, those through its capabilities included,
// until the thaw or the caller's deadline; Destroy is never held.
func TestFaultyHSMHoldsEveryCall(t *testing.T) {
	sw := &hsmfault.Switch{}
	sw.Hold()
	defer sw.Release()
	for _, c := range hsmtest.Calls {
		s := hsmtest.NewStub()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Do(ctx, hsmfault.Wrap(s, sw))
		cancel()
		if c.Op == hsm.OpDestroy {
			if err != nil || len(s.Calls()) != 1 {
				t.Errorf("Destroy while frozen: err %v, reached the HSM %v; want it passed through", err, s.Calls())
			}
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) || len(s.Calls()) != 0 {
			t.Errorf("%s while frozen: err %v, reached the HSM %v; want it held until the deadline", c.Op, err, s.Calls())
		}
	}

	// A call waiting when the thaw comes goes on to the HSM.
	s := hsmtest.NewStub()
	k, _ := hsmfault.Wrap(s, sw).KeyOps()
	done := make(chan error, 1)
	go func() {
		_, err := k.HMAC(context.Background(), hsmtest.StubHandle{K: hsm.KindHMACSHA256}, []byte("m"))
		done <- err
	}()
	// Held first: nothing answers and nothing reaches the HSM before the
	// thaw (so the release below is what lets it go).
	select {
	case err := <-done:
		t.Fatalf("HMAC answered while frozen: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if len(s.Calls()) != 0 {
		t.Fatalf("HMAC reached the HSM while frozen: %v", s.Calls())
	}
	sw.Release()
	select {
	case err := <-done:
		if err != nil || len(s.Calls()) != 1 {
			t.Fatalf("HMAC after the thaw: err %v, reached the HSM %v", err, s.Calls())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("HMAC still held after the thaw")
	}
}
