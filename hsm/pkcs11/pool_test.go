package pkcs11_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
	"github.com/meridiankms/meridian/internal/testwait"
)

// 32 goroutines share a pool of 4: every call succeeds and the token
// never sees more than 4 operation sessions plus the login one.
func TestPoolCap(t *testing.T) {
	h, f := openFaulty(t, 4)
	if h.MaxSessions() != 4 {
		t.Fatalf("MaxSessions = %d", h.MaxSessions())
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				m := bytes.Repeat([]byte{byte(w), byte(i)}, 16)
				blob, err := h.Wrap(ctx, 1, m)
				if err == nil {
					var got []byte
					if got, err = h.Unwrap(ctx, 1, blob); err == nil && !bytes.Equal(got, m) {
						err = fmt.Errorf("round trip mismatch")
					}
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := f.peakSessions(); p > 5 {
		t.Fatalf("peak open sessions %d, want <= 4 + login", p)
	}
}

// A caller waiting for a session gives up when its context does.
func TestContextEndsWhileWaitingForSession(t *testing.T) {
	h, f := openFaulty(t, 1)
	ctx := context.Background()
	entered, release := f.hold()
	held := make(chan error, 1)
	go func() {
		_, err := h.Random(ctx, 8) // holds the only session at the gate
		held <- err
	}()
	<-entered
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Wrap(wctx, 1, make([]byte, 32)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wrap waiting for a session: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v after the deadline", d)
	}
	cctx, cancel2 := context.WithCancel(ctx)
	go cancel2()
	if err := h.Health(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Health waiting for a session: %v, want context.Canceled", err)
	}
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wrap(ctx, 1, make([]byte, 32)); err != nil {
		t.Fatalf("Wrap once the session is free: %v", err)
	}
}

// Close waits for a borrowed session to come back, and the call holding
// it completes normally.
func TestCloseWaitsForBorrowedSessions(t *testing.T) {
	h, f := openFaulty(t, 2)
	ctx := context.Background()
	entered, release := f.hold()
	held := make(chan error, 1)
	go func() {
		_, err := h.Random(ctx, 8)
		held <- err
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a session was borrowed", err)
	case <-time.After(100 * time.Millisecond):
	}
	// New calls are refused as soon as Close has begun.
	testwait.Eventually(t, 5*time.Second, "new calls refused once Close began", func() bool {
		_, err := h.Random(ctx, 1)
		return errors.Is(err, hsm.ErrClosed)
	})
	release()
	if err := <-held; err != nil {
		t.Fatalf("the borrowed call: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// Two backends on two tokens share one loaded module; closing one leaves
// the other working; closing both finalises it, and it loads again.
func TestTwoTokensShareModule(t *testing.T) {
	a := withDK(t, 0)
	b := withDK(t, 0)
	module := softhsmtest.Module()
	if n := pkcs11.ModuleRefs(module); n != 2 {
		t.Fatalf("module refs = %d, want 2", n)
	}
	ctx := context.Background()
	blobA, err := a.Wrap(ctx, 1, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	// Each token has its own DK: B cannot open A's blob.
	if _, err := b.Unwrap(ctx, 1, blobA); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("token B unwrapping token A's blob: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Health(ctx); err != nil {
		t.Fatalf("B after A closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pkcs11.ModuleRefs(module); n != 0 {
		t.Fatalf("module refs after both closed = %d", n)
	}
	c := withDK(t, 0) // loads and initialises the module again
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}
