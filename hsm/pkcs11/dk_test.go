package pkcs11_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	pk "github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
)

// A token with no DK is a node awaiting enrolment: it opens, lists no
// versions, and says ErrNoDomainKey wherever a DK is needed.
func TestNoDomainKey(t *testing.T) {
	h := mustOpen(t, newConfig(t, "nodk"))
	ctx := context.Background()
	vs, err := h.DomainKeyVersions(ctx)
	if err != nil || len(vs) != 0 {
		t.Fatalf("DomainKeyVersions = %v, %v; want empty", vs, err)
	}
	if err := h.Health(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Health = %v, want hsm.ErrNoDomainKey", err)
	}
	if _, err := h.CurrentDomainKeyVersion(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("CurrentDomainKeyVersion = %v", err)
	}
	if _, err := h.Wrap(ctx, 1, make([]byte, 32)); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Wrap = %v", err)
	}
	if _, err := h.RotateDomainKey(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("RotateDomainKey with no DK = %v", err)
	}
	if _, err := h.Random(ctx, 16); err != nil {
		t.Fatalf("Random needs no DK: %v", err)
	}
}

func TestInitRotateAndReopen(t *testing.T) {
	cfg := newConfig(t, "rot")
	h := mustOpen(t, cfg)
	ctx := context.Background()
	if v, err := h.InitDomainKey(ctx); err != nil || v != 1 {
		t.Fatalf("InitDomainKey = %d, %v", v, err)
	}
	if _, err := h.InitDomainKey(ctx); !errors.Is(err, pkcs11.ErrDomainKeyExists) {
		t.Fatalf("second InitDomainKey = %v, want ErrDomainKeyExists", err)
	}
	blob, err := h.Wrap(ctx, 1, []byte("material-under-v1-0123456789abcd"))
	if err != nil {
		t.Fatal(err)
	}
	for want := uint32(2); want <= 3; want++ {
		if v, err := h.RotateDomainKey(ctx); err != nil || v != want {
			t.Fatalf("RotateDomainKey = %d, %v; want %d", v, err, want)
		}
	}
	if cur, err := h.CurrentDomainKeyVersion(ctx); err != nil || cur != 3 {
		t.Fatalf("CurrentDomainKeyVersion = %d, %v", cur, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// The DK versions are token objects: a new process (here, a new Open)
	// finds them by label and unwraps old blobs.
	h2 := mustOpen(t, cfg)
	vs, err := h2.DomainKeyVersions(ctx)
	if err != nil || !slices.Equal(vs, []uint32{1, 2, 3}) {
		t.Fatalf("after reopen DomainKeyVersions = %v, %v", vs, err)
	}
	if pt, err := h2.Unwrap(ctx, 1, blob); err != nil || string(pt) != "material-under-v1-0123456789abcd" {
		t.Fatalf("Unwrap after reopen: %v", err)
	}
}

// Concurrent rotations must each make a distinct version.
func TestConcurrentRotations(t *testing.T) {
	h := withDK(t, 0)
	ctx := context.Background()
	got := make(chan uint32, 4)
	for range 4 {
		go func() {
			v, err := h.RotateDomainKey(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
	}
	var vs []uint32
	for range 4 {
		vs = append(vs, <-got)
	}
	slices.Sort(vs)
	if !slices.Equal(vs, []uint32{2, 3, 4, 5}) {
		t.Fatalf("rotations made %v", vs)
	}
}

// The DK's attributes as generated, and what SoftHSM 2.6 does with them:
// its value cannot be read. By default the logged-in user may wrap it (so
// enrolment needs no SO step; DESIGN.md "Enrolment"); with
// RequireTrustedWrap it cannot be wrapped under a key the user made, only
// under one the SO marked CKA_TRUSTED.
func TestDomainKeyPolicy(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		cfg := newConfig(t, "policy")
		cfg.RequireTrustedWrap = trusted
		h := mustOpen(t, cfg)
		if _, err := h.InitDomainKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		p, err := h.DomainKeyPolicy(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Token || !p.Sensitive || !p.Extractable || p.WrapWithTrusted != trusted || !p.Wrap || !p.Unwrap || p.Encrypt || p.Decrypt {
			t.Fatalf("trusted=%v: DK attributes %+v", trusted, p)
		}
		var e pk.Error
		if !errors.As(p.ValueErr, &e) || e != pk.CKR_ATTRIBUTE_SENSITIVE {
			t.Fatalf("trusted=%v: reading the DK's value: %v, want CKR_ATTRIBUTE_SENSITIVE", trusted, p.ValueErr)
		}
		switch {
		case trusted && (!errors.As(p.UntrustedWrapErr, &e) || e != pk.CKR_KEY_NOT_WRAPPABLE):
			t.Fatalf("wrapping a trusted-only DK under a user key: %v, want CKR_KEY_NOT_WRAPPABLE", p.UntrustedWrapErr)
		case !trusted && p.UntrustedWrapErr != nil:
			t.Fatalf("wrapping the DK under a user key: %v, want success", p.UntrustedWrapErr)
		}
	}
}
