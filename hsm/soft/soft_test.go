package soft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

func TestConfigValidate(t *testing.T) {
	good := testConfig(t)
	if err := good.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	def := DefaultConfig()
	def.Path, def.Passphrase = good.Path, good.Passphrase
	if err := def.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"empty path", func(c *Config) { c.Path = "" }},
		{"no passphrase", func(c *Config) { c.Passphrase = nil }},
		{"7-byte passphrase", func(c *Config) { c.Passphrase = []byte("hunter2") }},
		{"time 0", func(c *Config) { c.KDF.Time = 0 }},
		{"time too high", func(c *Config) { c.KDF.Time = MaxKDFTime + 1 }},
		{"memory too low", func(c *Config) { c.KDF.MemoryKiB = MinKDFMemoryKiB - 1 }},
		{"memory too high", func(c *Config) { c.KDF.MemoryKiB = MaxKDFMemoryKiB + 1 }},
		{"no threads", func(c *Config) { c.KDF.Threads = 0 }},
		{"too many threads", func(c *Config) { c.KDF.Threads = MaxKDFThreads + 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error echoes the passphrase: %v", err)
			}
			if _, err := Create(context.Background(), c); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Create: err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigNeverPrintsPassphrase(t *testing.T) {
	cfg := testConfig(t)
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("open", "cfg", cfg)
	raw := fmt.Sprint(cfg.Passphrase) // how %v prints a []byte field
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), b.String()} {
		if strings.Contains(s, testPassphrase) || strings.Contains(s, raw) {
			t.Fatalf("passphrase printed: %s", s)
		}
		if !strings.Contains(s, "redacted") || !strings.Contains(s, cfg.Path) {
			t.Fatalf("no redaction marker or path in %s", s)
		}
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	cfg := testConfig(t)
	mustCreate(t, cfg)
	before, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), cfg); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: err = %v, want ErrExists", err)
	}
	after, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a refused Create changed the existing file")
	}
	assertOnlyFile(t, cfg.Path)
}

// assertOnlyFile checks that path is the only file in its directory, so no
// temporary file was left behind, and that it has mode 0600.
func assertOnlyFile(t *testing.T, path string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, filepath.Base(path))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestOpenMissingFile(t *testing.T) {
	cfg := testConfig(t)
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "create") || !strings.Contains(err.Error(), cfg.Path) {
		t.Fatalf("error %q should name the path and say to create the file", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	cfg := testConfig(t)
	mustCreate(t, cfg)
	wrong := cfg
	wrong.Passphrase = []byte("Tr0ub4dor&3-not-it")
	_, err := Open(context.Background(), wrong)
	if !errors.Is(err, hsm.ErrBadPassphrase) {
		t.Fatalf("err = %v, want hsm.ErrBadPassphrase", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, cfg.Path) {
		t.Errorf("error %q does not name the file", msg)
	}
	for _, p := range []string{testPassphrase, "Tr0ub4dor"} {
		if strings.Contains(msg, p) {
			t.Errorf("error %q contains a passphrase", msg)
		}
	}
}

func TestReopenKeepsDomainKey(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h := mustCreate(t, cfg)
	material := []byte("0123456789abcdef0123456789abcdef")
	blob, err := h.Wrap(ctx, 1, material)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := mustOpen(t, cfg)
	vs, err := h2.DomainKeyVersions(ctx)
	if err != nil || !slices.Equal(vs, []uint32{1}) {
		t.Fatalf("versions after reopen = %v, %v; want [1]", vs, err)
	}
	got, err := h2.Unwrap(ctx, 1, blob)
	if err != nil || !bytes.Equal(got, material) {
		t.Fatalf("unwrap after reopen: %v", err)
	}
	// A second, independently created file has a different DK.
	other := mustCreate(t, testConfig(t))
	if _, err := other.Unwrap(ctx, 1, blob); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("blob opened under another file's DK: err = %v", err)
	}
}

func TestFileHoldsNoSecretsInClear(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h := mustCreate(t, cfg)
	if _, err := h.RotateDomainKey(ctx); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.RLock()
	secrets := [][]byte{h.kek, []byte(testPassphrase)}
	for _, e := range h.set {
		secrets = append(secrets, e.key)
	}
	h.mu.RUnlock()
	for i, s := range secrets {
		for j := 0; j+8 <= len(s); j++ {
			if bytes.Contains(file, s[j:j+8]) {
				t.Fatalf("secret %d bytes %d..%d appear in the sealed file", i, j, j+8)
			}
		}
	}
	assertOnlyFile(t, cfg.Path)
}

func TestCloseWipesSecrets(t *testing.T) {
	h := mustCreate(t, testConfig(t))
	h.mu.RLock()
	key, kek := h.set[0].key, h.kek
	h.mu.RUnlock()
	if bytes.Equal(key, make([]byte, dkLen)) {
		t.Fatal("DK is all zeros before Close")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, make([]byte, dkLen)) || !bytes.Equal(kek, make([]byte, len(kek))) {
		t.Fatal("Close left DK or KEK bytes in memory")
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenOrCreate(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h1, err := OpenOrCreate(ctx, cfg)
	if err != nil {
		t.Fatalf("first OpenOrCreate: %v", err)
	}
	blob, err := h1.Wrap(ctx, 1, []byte("material"))
	if err != nil {
		t.Fatal(err)
	}
	_ = h1.Close()
	h2, err := OpenOrCreate(ctx, cfg)
	if err != nil {
		t.Fatalf("second OpenOrCreate: %v", err)
	}
	defer h2.Close()
	if got, err := h2.Unwrap(ctx, 1, blob); err != nil || string(got) != "material" {
		t.Fatalf("second OpenOrCreate made a new DK: %v", err)
	}
	wrong := cfg
	wrong.Passphrase = []byte("a different passphrase")
	if _, err := OpenOrCreate(ctx, wrong); !errors.Is(err, hsm.ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: err = %v, want ErrBadPassphrase (never a new file)", err)
	}
}

func TestCancelledContextCreatesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := testConfig(t)
	for name, f := range map[string]func(context.Context, Config) (*HSM, error){
		"Create": Create, "Open": Open, "OpenOrCreate": OpenOrCreate,
	} {
		if _, err := f(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", name, err)
		}
	}
	if _, err := os.Stat(cfg.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a cancelled call left a file: %v", err)
	}
}

func TestInfo(t *testing.T) {
	cfg := testConfig(t)
	h := mustCreate(t, cfg)
	if got := h.Info(); got != (hsm.Info{Backend: "soft", Detail: cfg.Path}) {
		t.Fatalf("Info = %+v", got)
	}
}
