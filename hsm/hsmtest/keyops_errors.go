package hsmtest

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

func testImportErrors(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	dk := currentDK(t, h)
	small, err := rsaSmallOnce()
	if err != nil {
		t.Fatal(err)
	}
	garbage := randomBytes(t, 40)
	for _, c := range []struct {
		name    string
		version uint32
		blob    []byte
		kind    hsm.KeyKind
		want    error
	}{
		{"garbage blob", dk, garbage, hsm.KindAES256, hsm.ErrUnwrap},
		{"garbage private key blob", dk, randomBytes(t, 160), hsm.KindRSAPrivate, hsm.ErrUnwrap},
		{"short blob", dk, garbage[:8], hsm.KindAES256, hsm.ErrUnwrap},
		{"unaligned blob", dk, garbage[:39], hsm.KindAES256, hsm.ErrUnwrap},
		{"empty blob", dk, nil, hsm.KindAES256, hsm.ErrUnwrap},
		{"unknown dk version", dk + 1000, wrapOrFatal(t, h, randomBytes(t, 32)), hsm.KindAES256, hsm.ErrNoDomainKey},
		{"kind 0", dk, wrapOrFatal(t, h, randomBytes(t, 32)), hsm.KeyKind(0), hsm.ErrInvalidInput},
		{"kind 99", dk, wrapOrFatal(t, h, randomBytes(t, 32)), hsm.KeyKind(99), hsm.ErrInvalidInput},
		{"48 bytes as AES-256", dk, wrapOrFatal(t, h, randomBytes(t, 48)), hsm.KindAES256, hsm.ErrInvalidInput},
		{"16 bytes as AES-256", dk, wrapOrFatal(t, h, randomBytes(t, 16)), hsm.KindAES256, hsm.ErrInvalidInput},
		{"32 bytes as HMAC-SHA-512", dk, wrapOrFatal(t, h, randomBytes(t, 32)), hsm.KindHMACSHA512, hsm.ErrInvalidInput},
		{"64 bytes as HMAC-SHA-256", dk, wrapOrFatal(t, h, randomBytes(t, 64)), hsm.KindHMACSHA256, hsm.ErrInvalidInput},
		{"EC key as RSA", dk, wrapOrFatal(t, h, pkcs8(t, testECKey(t, 0))), hsm.KindRSAPrivate, hsm.ErrInvalidInput},
		{"RSA key as EC", dk, wrapOrFatal(t, h, pkcs8(t, testRSAKey(t))), hsm.KindECDSAPrivate, hsm.ErrInvalidInput},
		{"random bytes as EC", dk, wrapOrFatal(t, h, randomBytes(t, 64)), hsm.KindECDSAPrivate, hsm.ErrInvalidInput},
		{"truncated PKCS#8 as RSA", dk, wrapOrFatal(t, h, pkcs8(t, testRSAKey(t))[:600]), hsm.KindRSAPrivate, hsm.ErrInvalidInput},
		{"RSA-1024", dk, wrapOrFatal(t, h, pkcs8(t, small)), hsm.KindRSAPrivate, hsm.ErrInvalidInput},
	} {
		kh, err := h.ImportWrapped(ctx, c.version, c.blob, c.kind)
		wantErr(t, c.name, err, c.want)
		if kh != nil {
			t.Errorf("%s: ImportWrapped returned a handle with its error", c.name)
		}
	}
	// None of that may have hurt the HSM.
	if err := h.Health(ctx); err != nil {
		t.Fatalf("Health after bad imports: %v", err)
	}
	importKey(t, h, randomBytes(t, 32), hsm.KindAES256)
}

// op is one KeyOps call on a handle, for tables of "every operation".
type op struct {
	name string
	call func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error
}

var nonce12 = make([]byte, 12)

var allOps = []op{
	{"EncryptGCM", func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error {
		_, err := h.EncryptGCM(ctx, kh, nonce12, []byte("m"), nil)
		return err
	}},
	{"DecryptGCM", func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error {
		_, err := h.DecryptGCM(ctx, kh, nonce12, make([]byte, 17), nil)
		return err
	}},
	{"HMAC", func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error {
		_, err := h.HMAC(ctx, kh, []byte("m"))
		return err
	}},
	{"Sign", func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error {
		_, err := h.Sign(ctx, kh, crypto.SHA256, false, make([]byte, 32))
		return err
	}},
	{"DecryptOAEP", func(ctx context.Context, h keyOpsHSM, kh hsm.KeyHandle) error {
		_, err := h.DecryptOAEP(ctx, kh, crypto.SHA1, make([]byte, 256))
		return err
	}},
}

// opKinds says which kinds each operation takes.
var opKinds = map[string][]hsm.KeyKind{
	"EncryptGCM":  {hsm.KindAES256},
	"DecryptGCM":  {hsm.KindAES256},
	"HMAC":        {hsm.KindHMACSHA256, hsm.KindHMACSHA384, hsm.KindHMACSHA512},
	"Sign":        {hsm.KindRSAPrivate, hsm.KindECDSAPrivate},
	"DecryptOAEP": {hsm.KindRSAPrivate},
}

func takes(o op, kind hsm.KeyKind) bool {
	for _, k := range opKinds[o.name] {
		if k == kind {
			return true
		}
	}
	return false
}

// opsFor lists the operations a kind takes.
func opsFor(kind hsm.KeyKind) []op {
	var ops []op
	for _, o := range allOps {
		if takes(o, kind) {
			ops = append(ops, o)
		}
	}
	return ops
}

// oneOfEach imports a key of every kind.
func oneOfEach(t *testing.T, h keyOpsHSM) map[hsm.KeyKind]hsm.KeyHandle {
	t.Helper()
	hs := map[hsm.KeyKind]hsm.KeyHandle{
		hsm.KindAES256:       importKey(t, h, randomBytes(t, 32), hsm.KindAES256),
		hsm.KindRSAPrivate:   importKey(t, h, pkcs8(t, testRSAKey(t)), hsm.KindRSAPrivate),
		hsm.KindECDSAPrivate: importKey(t, h, pkcs8(t, testECKey(t, 1)), hsm.KindECDSAPrivate),
	}
	for _, hk := range hmacKinds {
		hs[hk.kind] = importKey(t, h, randomBytes(t, hk.size), hk.kind)
	}
	return hs
}

func testWrongKind(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	for kind, kh := range oneOfEach(t, h) {
		for _, o := range allOps {
			if takes(o, kind) {
				continue
			}
			wantErr(t, fmt.Sprintf("%s with kind %d", o.name, kind), o.call(ctx, h, kh), hsm.ErrInvalidInput)
		}
	}
	for _, o := range allOps {
		wantErr(t, o.name+" with a nil handle", o.call(ctx, h, nil), hsm.ErrInvalidInput)
		wantErr(t, o.name+" with a handle of another type", o.call(ctx, h, alienHandle{}), hsm.ErrInvalidInput)
	}
	wantErr(t, "Destroy of a nil handle", h.Destroy(ctx, nil), hsm.ErrInvalidInput)
}

// alienHandle is a KeyHandle no backend made.
type alienHandle struct{}

func (alienHandle) Kind() hsm.KeyKind { return hsm.KindAES256 }

func testDestroy(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	key := randomBytes(t, 32)
	blob := wrapOrFatal(t, h, key)
	dk := currentDK(t, h)
	twin, err := h.ImportWrapped(ctx, dk, blob, hsm.KindAES256)
	if err != nil {
		t.Fatal(err)
	}
	for kind, kh := range oneOfEach(t, h) {
		if err := h.Destroy(ctx, kh); err != nil {
			t.Fatalf("Destroy kind %d: %v", kind, err)
		}
		for _, o := range opsFor(kind) {
			wantErr(t, fmt.Sprintf("%s after Destroy of kind %d", o.name, kind), o.call(ctx, h, kh), hsm.ErrHandleInvalid)
		}
		wantErr(t, fmt.Sprintf("second Destroy of kind %d", kind), h.Destroy(ctx, kh), hsm.ErrHandleInvalid)
	}
	// Destroying one handle leaves another import of the same blob alone.
	kh, err := h.ImportWrapped(ctx, dk, blob, hsm.KindAES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(ctx, kh); err != nil {
		t.Fatal(err)
	}
	sealed, err := h.EncryptGCM(ctx, twin, nonce12, []byte("still here"), nil)
	if err != nil {
		t.Fatalf("EncryptGCM with the twin of a destroyed handle: %v", err)
	}
	if got, err := goGCM(t, key).Open(nil, nonce12, sealed, nil); err != nil || string(got) != "still here" {
		t.Fatalf("twin's seal does not open in Go: %v", err)
	}
}

func testKeyOpsClosed(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	hs := oneOfEach(t, h)
	blob := wrapOrFatal(t, h, randomBytes(t, 32))
	dk := currentDK(t, h)
	if err := h.HSM.Close(); err != nil {
		t.Fatal(err)
	}
	for kind, kh := range hs {
		for _, o := range opsFor(kind) {
			wantErr(t, fmt.Sprintf("%s with kind %d after Close", o.name, kind), o.call(ctx, h, kh), hsm.ErrClosed)
		}
	}
	_, err := h.ImportWrapped(ctx, dk, blob, hsm.KindAES256)
	wantErr(t, "ImportWrapped after Close", err, hsm.ErrClosed)
}

func testKeyOpsCancelled(t *testing.T, h keyOpsHSM) {
	kh := importKey(t, h, randomBytes(t, 32), hsm.KindAES256)
	blob := wrapOrFatal(t, h, randomBytes(t, 32))
	dk := currentDK(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.ImportWrapped(ctx, dk, blob, hsm.KindAES256)
	wantErr(t, "ImportWrapped with a cancelled context", err, context.Canceled)
	_, err = h.EncryptGCM(ctx, kh, nonce12, []byte("m"), nil)
	wantErr(t, "EncryptGCM with a cancelled context", err, context.Canceled)
	wantErr(t, "Destroy with a cancelled context", h.Destroy(ctx, kh), context.Canceled)
	// The cancelled Destroy did not destroy.
	if _, err := h.EncryptGCM(context.Background(), kh, nonce12, []byte("m"), nil); err != nil {
		t.Fatalf("EncryptGCM after a cancelled Destroy: %v", err)
	}
}

// testForeignHandle: a handle only works with the HSM that made it.
func testForeignHandle(t *testing.T, a, b keyOpsHSM) {
	ctx := context.Background()
	kh := importKey(t, b, randomBytes(t, 32), hsm.KindAES256)
	_, err := a.EncryptGCM(ctx, kh, nonce12, []byte("m"), nil)
	wantErr(t, "EncryptGCM with another HSM's handle", err, hsm.ErrInvalidInput)
	wantErr(t, "Destroy of another HSM's handle", a.Destroy(ctx, kh), hsm.ErrInvalidInput)
	if _, err := b.EncryptGCM(ctx, kh, nonce12, []byte("m"), nil); err != nil {
		t.Fatalf("EncryptGCM with its own HSM: %v", err)
	}
}
