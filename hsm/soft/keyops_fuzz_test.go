package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

// FuzzImportWrapped feeds arbitrary material, sealed under the DK, to
// ImportWrapped as every kind: the PKCS#8 and length checks must refuse
// what is not a key of that kind with ErrInvalidInput, never panic, and a
// handle they accept must work.
func FuzzImportWrapped(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der, uint8(hsm.KindECDSAPrivate))
	f.Add(der[:len(der)-1], uint8(hsm.KindECDSAPrivate))
	f.Add(der, uint8(hsm.KindRSAPrivate))
	f.Add(make([]byte, 32), uint8(hsm.KindAES256))
	f.Add(make([]byte, 48), uint8(hsm.KindHMACSHA384))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, uint8(hsm.KindRSAPrivate))
	f.Add([]byte{1}, uint8(0))
	h := mustCreate(f, testConfig(f))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, material []byte, kind uint8) {
		if len(material) == 0 {
			return // Wrap refuses it; nothing to import
		}
		blob, err := h.Wrap(ctx, 1, material)
		if err != nil {
			t.Fatal(err)
		}
		kh, err := h.ImportWrapped(ctx, 1, blob, hsm.KeyKind(kind))
		if err != nil {
			if !errors.Is(err, hsm.ErrInvalidInput) {
				t.Fatalf("ImportWrapped: %v, want ErrInvalidInput", err)
			}
			return
		}
		if err := h.Destroy(ctx, kh); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecryptGCM: any nonce, sealed bytes and AAD either open (they never
// do without the key) or give ErrInvalidInput / ErrUnwrap; never a panic.
func FuzzDecryptGCM(f *testing.F) {
	f.Add(make([]byte, 12), make([]byte, 17), []byte("aad"))
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add(make([]byte, 12), make([]byte, 15), []byte(nil))
	h := mustCreate(f, testConfig(f))
	ctx := context.Background()
	blob, err := h.Wrap(ctx, 1, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	kh, err := h.ImportWrapped(ctx, 1, blob, hsm.KindAES256)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, nonce, sealed, aad []byte) {
		_, err := h.DecryptGCM(ctx, kh, nonce, sealed, aad)
		if !errors.Is(err, hsm.ErrInvalidInput) && !errors.Is(err, hsm.ErrUnwrap) {
			t.Fatalf("DecryptGCM of fuzz input: %v", err)
		}
	})
}
