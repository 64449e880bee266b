package pkcs11_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
	"github.com/meridiankms/meridian/hsm/keywrap"
)

// Blobs must not depend on the backend: the token's wrap must open with
// package keywrap (and so with the soft backend) under the same KEK, and
// keywrap's blobs must open in the token. A test KEK of known value stands
// in for the DK, whose value the token never reveals.
func TestCrossCompatWithKeywrap(t *testing.T) {
	h := withDK(t, 0)
	ctx := context.Background()
	t.Logf("token pads KWP input (SoftHSM 2.6 quirk, fallback in use): %v", h.PadsKWP())
	kek := make([]byte, 32)
	rand.Read(kek)
	sizes := []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 40, 63}
	sizes = append(sizes, hsmtest.MaterialSizes...)
	for _, n := range sizes {
		m := make([]byte, n)
		rand.Read(m)
		m[n-1] = 0 // a trailing zero must survive: padding is not stripped by guesswork
		want, err := keywrap.WrapKey(kek, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.WrapWithKey(ctx, kek, m)
		if err != nil {
			t.Fatalf("%d bytes: token wrap: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: token blob differs from keywrap's", n)
		}
		back, err := keywrap.UnwrapKey(kek, got)
		if err != nil || !bytes.Equal(back, m) {
			t.Fatalf("%d bytes: keywrap cannot unwrap the token's blob: %v", n, err)
		}
		pt, err := h.UnwrapWithKey(ctx, kek, want)
		if err != nil || !bytes.Equal(pt, m) {
			t.Fatalf("%d bytes: token cannot unwrap keywrap's blob (got %d bytes): %v", n, len(pt), err)
		}
	}
}

// The quirk the fallback exists for: if SoftHSM ever wraps unaligned
// input faithfully, the probe must notice and the fallback stays unused.
func TestProbeMatchesNativeWrap(t *testing.T) {
	h := withDK(t, 0)
	kek := make([]byte, 32)
	m := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	native, err := h.NativeWrapWithKey(context.Background(), kek, m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := keywrap.UnwrapKey(kek, native)
	if err != nil {
		t.Fatal(err)
	}
	if pads := len(back) != len(m); pads != h.PadsKWP() {
		t.Fatalf("native KWP returns %d bytes for %d, but the probe says pads=%v", len(back), len(m), h.PadsKWP())
	}
}

// Blobs made by the token's DK under Wrap must fail keywrap under any
// other key, and keywrap blobs under a foreign key must fail in the token
// with hsm.ErrUnwrap, not a device error.
func TestForeignBlobIsUnwrapError(t *testing.T) {
	h := withDK(t, 0)
	ctx := context.Background()
	for _, n := range []int{16, 21, 138} {
		foreign, _ := keywrap.WrapKey(make([]byte, 32), make([]byte, n))
		if _, err := h.Unwrap(ctx, 1, foreign); !errors.Is(err, hsm.ErrUnwrap) {
			t.Fatalf("%d bytes: Unwrap of a foreign blob: %v, want hsm.ErrUnwrap", n, err)
		}
	}
	if err := h.Health(ctx); err != nil {
		t.Fatalf("Health after bad blobs: %v", err)
	}
}

// FuzzUnwrap feeds arbitrary blobs to the token: they must give
// hsm.ErrUnwrap (or, vanishingly rarely, material), never a panic or a
// device error.
func FuzzUnwrap(f *testing.F) {
	h := withDK(f, 0)
	ctx := context.Background()
	good, err := h.Wrap(ctx, 1, []byte("0123456789abcdef0123"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{nil, {}, {0}, make([]byte, 8), make([]byte, 16), make([]byte, 17), good, good[:len(good)-8]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		_, err := h.Unwrap(ctx, 1, blob)
		if err != nil && !errors.Is(err, hsm.ErrUnwrap) {
			t.Fatalf("Unwrap of %d bytes: %v", len(blob), err)
		}
	})
}
