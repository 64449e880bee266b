package pkcs11_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pk "github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// Every start-up failure names the problem, and no message holds the PIN.
func TestStartupErrors(t *testing.T) {
	good := newConfig(t, "startup")
	notLib := filepath.Join(t.TempDir(), "not-a-module.so")
	if err := os.WriteFile(notLib, []byte("just text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*pkcs11.Config)
		hide   uint
		want   error
		says   []string
	}{
		{"missing module", func(c *pkcs11.Config) { c.ModulePath = "/nonexistent/libvendor.so" }, 0,
			pkcs11.ErrModule, []string{"/nonexistent/libvendor.so", "does not exist"}},
		{"not a PKCS#11 library", func(c *pkcs11.Config) { c.ModulePath = notLib }, 0,
			pkcs11.ErrModule, []string{notLib, "not a PKCS#11 library"}},
		{"unknown token label", func(c *pkcs11.Config) { c.TokenLabel = "no-such-token" }, 0,
			pkcs11.ErrTokenNotFound, []string{`"no-such-token"`, "tokens found", fmt.Sprintf("%q", good.TokenLabel)}},
		{"wrong PIN", func(c *pkcs11.Config) { c.PIN = "wrong-pin-1234" }, 0,
			pkcs11.ErrWrongPIN, []string{fmt.Sprintf("login to token %q: ", good.TokenLabel), "wrong PIN"}},
		{"missing wrap mechanism", nil, pk.CKM_AES_KEY_WRAP_PAD,
			pkcs11.ErrMechanism, []string{fmt.Sprintf("token %q lacks mechanism CKM_AES_KEY_WRAP_PAD", good.TokenLabel)}},
		{"missing keygen mechanism", nil, pk.CKM_AES_KEY_GEN,
			pkcs11.ErrMechanism, []string{"lacks mechanism CKM_AES_KEY_GEN"}},
		{"missing fallback mechanism", nil, pk.CKM_AES_CBC,
			pkcs11.ErrMechanism, []string{"lacks mechanism CKM_AES_CBC"}},
		{"empty PIN", func(c *pkcs11.Config) { c.PIN = "" }, 0,
			pkcs11.ErrInvalidConfig, []string{"PIN is empty"}},
		{"prefix ends in a digit", func(c *pkcs11.Config) { c.DomainKeyLabelPrefix = "dk2" }, 0,
			pkcs11.ErrInvalidConfig, []string{"ends in a digit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			if tc.change != nil {
				tc.change(&cfg)
			}
			hide := map[uint]bool{tc.hide: tc.hide != 0}
			h, err := pkcs11.OpenWrapped(context.Background(), cfg, func(p pkcs11.P11) pkcs11.P11 {
				return &faulty{P11: p, hide: hide}
			})
			if err == nil {
				h.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			for _, secret := range []string{good.PIN, "wrong-pin-1234", softhsmtest.SOPIN} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a PIN", err)
				}
			}
		})
	}
	// The failures left nothing behind: the good config still opens.
	mustOpen(t, good)
}

func TestTokenInUse(t *testing.T) {
	cfg := newConfig(t, "inuse")
	mustOpen(t, cfg)
	if _, err := pkcs11.Open(context.Background(), cfg); !errors.Is(err, pkcs11.ErrTokenInUse) {
		t.Fatalf("second Open of one token: %v, want ErrTokenInUse", err)
	}
}

func TestConfigNeverPrintsPIN(t *testing.T) {
	cfg := pkcs11.DefaultConfig()
	cfg.ModulePath, cfg.TokenLabel, cfg.PIN = "/m.so", "t", "s3cret-pin"
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("open", "cfg", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), b.String()} {
		if strings.Contains(s, "s3cret-pin") {
			t.Fatalf("PIN printed: %s", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Fatalf("no redaction marker in %s", s)
		}
	}
}

func TestReadPINFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pin")
	if err := os.WriteFile(p, []byte("1234-abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pin, err := pkcs11.ReadPINFile(p); err != nil || pin != "1234-abcd" {
		t.Fatalf("ReadPINFile = %q, %v", pin, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pkcs11.ReadPINFile(p); !errors.Is(err, pkcs11.ErrInvalidConfig) || strings.Contains(err.Error(), "1234") {
		t.Fatalf("world-readable PIN file: %v", err)
	}
}
