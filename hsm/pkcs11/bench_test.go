package pkcs11_test

import (
	"context"
	"testing"
)

func benchWrap(b *testing.B, n int) {
	h := withDK(b, 0)
	ctx := context.Background()
	m := make([]byte, n)
	m[n-1] = 1
	b.SetBytes(int64(n))
	for b.Loop() {
		if _, err := h.Wrap(ctx, 1, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrap32(b *testing.B)  { benchWrap(b, 32) }
func BenchmarkWrap138(b *testing.B) { benchWrap(b, 138) } // PKCS#8 P-256: the fallback on SoftHSM

func BenchmarkUnwrap32(b *testing.B) {
	h := withDK(b, 0)
	ctx := context.Background()
	blob, err := h.Wrap(ctx, 1, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32)
	for b.Loop() {
		if _, err := h.Unwrap(ctx, 1, blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDomainKeyVersions(b *testing.B) {
	h := withDK(b, 2)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.DomainKeyVersions(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHealth(b *testing.B) {
	h := withDK(b, 0)
	ctx := context.Background()
	for b.Loop() {
		if err := h.Health(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectGCM is a bare C_EncryptInit+C_Encrypt AES-256-GCM loop
// of 32 bytes on one session: the baseline HSM-level Encrypt through
// Meridian is compared with (issue 3 asks for >= 0.8x).
func BenchmarkDirectGCM32(b *testing.B) {
	h := withDK(b, 0)
	b.SetBytes(32)
	if err := h.DirectGCM(context.Background(), b.N, make([]byte, 32), b.ResetTimer); err != nil {
		b.Fatal(err)
	}
}
