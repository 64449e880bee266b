package soft

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

func TestKeyOpsContract(t *testing.T) {
	hsmtest.RunKeyOpsContract(t, func(t *testing.T) hsm.HSM {
		return mustCreate(t, testConfig(t))
	})
}

// Keys imported under an older DK version work like any other.
func TestKeyOpsContractRotated(t *testing.T) {
	hsmtest.RunKeyOpsContract(t, func(t *testing.T) hsm.HSM {
		h := mustCreate(t, testConfig(t))
		if _, err := h.RotateDomainKey(context.Background()); err != nil {
			t.Fatalf("RotateDomainKey: %v", err)
		}
		return h
	})
}

// BenchmarkEncryptGCM32 is an HSM-level AES-GCM encrypt of 32 bytes on the
// soft backend: the in-process baseline for the PKCS#11 figure.
func BenchmarkEncryptGCM32(b *testing.B) {
	ctx := context.Background()
	h := mustCreate(b, testConfig(b))
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	blob, err := h.Wrap(ctx, 1, key)
	if err != nil {
		b.Fatal(err)
	}
	kh, err := h.ImportWrapped(ctx, 1, blob, hsm.KindAES256)
	if err != nil {
		b.Fatal(err)
	}
	msg, nonce := make([]byte, 32), make([]byte, 12)
	b.SetBytes(32)
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		nonce[0], nonce[1], nonce[2], nonce[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		if _, err := h.EncryptGCM(ctx, kh, nonce, msg, nil); err != nil {
			b.Fatal(err)
		}
	}
}
