package pkcs11_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

func TestMain(m *testing.M) { os.Exit(softhsmtest.Run(m)) }

// newConfig makes a fresh SoftHSM token and a Config for it.
func newConfig(t testing.TB, prefix string) pkcs11.Config {
	t.Helper()
	label := softhsmtest.Label(prefix)
	module, pin := softhsmtest.NewToken(t, label)
	cfg := pkcs11.DefaultConfig()
	cfg.ModulePath, cfg.TokenLabel, cfg.PIN = module, label, pin
	return cfg
}

// closeAtEnd closes h when the test ends, tolerating an earlier Close.
func closeAtEnd(t testing.TB, h *pkcs11.HSM) {
	t.Cleanup(func() {
		if err := h.Close(); err != nil && !errors.Is(err, hsm.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
}

func mustOpen(t testing.TB, cfg pkcs11.Config) *pkcs11.HSM {
	t.Helper()
	h, err := pkcs11.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	closeAtEnd(t, h)
	return h
}

// withDK opens a fresh token holding DK v1 plus rotations more versions.
func withDK(t testing.TB, rotations int) *pkcs11.HSM {
	t.Helper()
	h := mustOpen(t, newConfig(t, "dk"))
	ctx := context.Background()
	if v, err := h.InitDomainKey(ctx); err != nil || v != 1 {
		t.Fatalf("InitDomainKey = %d, %v", v, err)
	}
	for range rotations {
		if _, err := h.RotateDomainKey(ctx); err != nil {
			t.Fatalf("RotateDomainKey: %v", err)
		}
	}
	return h
}
