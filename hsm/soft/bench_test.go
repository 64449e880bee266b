package soft

import (
	"context"
	"testing"
)

// BenchmarkUnwrap32 is the HSM cost of a key version's first use: keystore
// unwraps a 32-byte AES key once and caches it.
func BenchmarkUnwrap32(b *testing.B) {
	ctx := context.Background()
	h := mustCreate(b, testConfig(b))
	blob, err := h.Wrap(ctx, 1, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Unwrap(ctx, 1, blob); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrap32 is the HSM cost of CreateKey and rotation for an AES key.
func BenchmarkWrap32(b *testing.B) {
	ctx := context.Background()
	h := mustCreate(b, testConfig(b))
	m := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Wrap(ctx, 1, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenDefaultKDF is a node's start-up cost with the production
// argon2id parameters (the key derivation dominates).
func BenchmarkOpenDefaultKDF(b *testing.B) {
	cfg := testConfig(b)
	cfg.KDF = DefaultKDFParams()
	if err := mustCreate(b, cfg).Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h, err := Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = h.Close()
	}
}
