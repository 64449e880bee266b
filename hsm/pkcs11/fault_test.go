package pkcs11_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	pk "github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
)

// openFaulty opens a fresh token holding DK v1 behind a fault injector.
func openFaulty(t *testing.T, maxSessions int) (*pkcs11.HSM, *faulty) {
	t.Helper()
	cfg := newConfig(t, "fault")
	cfg.MaxSessions = maxSessions
	var f *faulty
	h, err := pkcs11.OpenWrapped(context.Background(), cfg, func(p pkcs11.P11) pkcs11.P11 {
		f = &faulty{P11: p}
		return f
	})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, h)
	if _, err := h.InitDomainKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h, f
}

// A device that fails makes the node unhealthy with hsm.ErrUnavailable
// on every call; once it answers again, the next probe reconnects, logs
// in again and the node is healthy, with its DK and old blobs intact.
func TestDeviceErrorThenRecovery(t *testing.T) {
	for _, code := range []uint{pk.CKR_DEVICE_ERROR, pk.CKR_TOKEN_NOT_PRESENT, pk.CKR_SESSION_HANDLE_INVALID, pk.CKR_USER_NOT_LOGGED_IN} {
		t.Run(pk.Error(code).Error(), func(t *testing.T) {
			h, f := openFaulty(t, 4)
			ctx := context.Background()
			material := []byte("0123456789abcdef0123456789abcdef")
			blob, err := h.Wrap(ctx, 1, material)
			if err != nil {
				t.Fatal(err)
			}
			f.failAll.Store(uint64(code))
			if _, err := h.Unwrap(ctx, 1, blob); !errors.Is(err, hsm.ErrUnavailable) {
				t.Fatalf("Unwrap on a failing device: %v, want hsm.ErrUnavailable", err)
			}
			for range 3 { // stays down while the device does, each probe trying again
				if err := h.Health(ctx); !errors.Is(err, hsm.ErrUnavailable) {
					t.Fatalf("Health on a failing device: %v, want hsm.ErrUnavailable", err)
				}
			}
			if _, err := h.Random(ctx, 8); !errors.Is(err, hsm.ErrUnavailable) {
				t.Fatalf("Random on a failing device: %v", err)
			}
			f.failAll.Store(0)
			if err := h.Health(ctx); err != nil {
				t.Fatalf("Health after the device came back: %v", err)
			}
			pt, err := h.Unwrap(ctx, 1, blob)
			if err != nil || !bytes.Equal(pt, material) {
				t.Fatalf("Unwrap after recovery: %v", err)
			}
		})
	}
}

// One failed call drops its session and returns ErrUnavailable; the very
// next call reconnects by itself, without anyone calling Health.
func TestSingleFaultRecoversOnNextCall(t *testing.T) {
	h, f := openFaulty(t, 4)
	ctx := context.Background()
	f.failNext.Store(pk.CKR_DEVICE_ERROR)
	if _, err := h.Wrap(ctx, 1, make([]byte, 32)); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("Wrap with a device error: %v", err)
	}
	if _, err := h.Wrap(ctx, 1, make([]byte, 32)); err != nil {
		t.Fatalf("Wrap after one fault: %v", err)
	}
	if err := h.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// A reconnect that fails (login refused while the token is sick) leaves
// the node down; a later one succeeds.
func TestReconnectFailsThenSucceeds(t *testing.T) {
	h, f := openFaulty(t, 4)
	ctx := context.Background()
	f.failNext.Store(pk.CKR_USER_NOT_LOGGED_IN)
	if _, err := h.Random(ctx, 8); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatal(err)
	}
	f.failAll.Store(pk.CKR_TOKEN_NOT_PRESENT)
	if err := h.Health(ctx); !errors.Is(err, hsm.ErrUnavailable) || !errors.Is(err, pkcs11.ErrTokenNotFound) && !isCode(err, pk.CKR_TOKEN_NOT_PRESENT) {
		t.Fatalf("Health while the token is gone: %v", err)
	}
	f.failAll.Store(0)
	if err := h.Health(ctx); err != nil {
		t.Fatalf("Health after the token is back: %v", err)
	}
}

func isCode(err error, code uint) bool {
	var e pk.Error
	return errors.As(err, &e) && uint(e) == code
}

// Errors that are the caller's (bad blobs) never make the node unhealthy.
func TestBadBlobsDoNotTakeNodeDown(t *testing.T) {
	h, _ := openFaulty(t, 2)
	ctx := context.Background()
	for _, b := range [][]byte{make([]byte, 24), make([]byte, 40), bytes.Repeat([]byte{0xA6}, 16)} {
		if _, err := h.Unwrap(ctx, 1, b); !errors.Is(err, hsm.ErrUnwrap) {
			t.Fatalf("Unwrap garbage: %v", err)
		}
	}
	if err := h.Health(ctx); err != nil {
		t.Fatal(err)
	}
}
