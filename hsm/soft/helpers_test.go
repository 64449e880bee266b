package soft

import (
	"context"
	"path/filepath"
	"testing"
)

// testPassphrase is deliberately distinctive so tests can scan error
// messages and files for it.
const testPassphrase = "correct horse battery staple"

// testKDF keeps each key derivation near 20 ms.
var testKDF = KDFParams{Time: 1, MemoryKiB: MinKDFMemoryKiB, Threads: 1}

func testConfig(t testing.TB) Config {
	t.Helper()
	return Config{
		Path:       filepath.Join(t.TempDir(), "dk.sealed"),
		Passphrase: []byte(testPassphrase),
		KDF:        testKDF,
	}
}

func mustCreate(t testing.TB, cfg Config) *HSM {
	t.Helper()
	h, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func mustOpen(t testing.TB, cfg Config) *HSM {
	t.Helper()
	h, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
