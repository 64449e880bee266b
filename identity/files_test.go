package identity

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// files are the three paths a Source reads.
type files struct{ cert, key, ca string }

func newFiles(dir string) files {
	return files{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), ca: filepath.Join(dir, "ca.pem")}
}

// write replaces the files the way a careful issuer does: each by writing
// a temporary file and renaming it over the old one.
func (f files) write(t testing.TB, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	if certPEM != nil {
		atomicWrite(t, f.cert, certPEM)
	}
	if keyPEM != nil {
		atomicWrite(t, f.key, keyPEM)
	}
	if caPEM != nil {
		atomicWrite(t, f.ca, caPEM)
	}
}

func atomicWrite(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newSource writes the material into a fresh directory and loads it.
func newSource(t testing.TB, certPEM, keyPEM, caPEM []byte, mods ...func(*Config)) (*Source, files) {
	t.Helper()
	f := newFiles(t.TempDir())
	f.write(t, certPEM, keyPEM, caPEM)
	cfg := Config{CAFile: f.ca, Logger: testLogger(t)}
	if certPEM != nil {
		cfg.CertFile, cfg.KeyFile = f.cert, f.key
	}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return s, f
}

// testLogger routes logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
