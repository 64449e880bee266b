package soft

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

func mustCreateEmpty(t testing.TB, cfg Config) *HSM {
	t.Helper()
	h, err := CreateEmpty(context.Background(), cfg)
	if err != nil {
		t.Fatalf("CreateEmpty: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestEnrolContract(t *testing.T) {
	hsmtest.RunEnrolContract(t,
		func(t *testing.T) hsm.HSM { return mustCreate(t, testConfig(t)) },
		func(t *testing.T) hsm.HSM { return mustCreateEmpty(t, testConfig(t)) })
}

// An enrolled node keeps its DK across a restart: the import re-sealed
// the file, and the file never holds a DK byte, the passphrase or the
// transport key in the clear.
func TestEnrolSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	member := mustCreate(t, testConfig(t))
	if _, err := member.RotateDomainKey(ctx); err != nil {
		t.Fatal(err)
	}
	blob, err := member.Wrap(ctx, 1, []byte("material wrapped before enrolment"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	joiner := mustCreateEmpty(t, cfg)
	empty, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	pub, err := joiner.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keygen := time.Since(start)
	b, err := member.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := joiner.ImportDomainKeys(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Logf("soft enrolment: %v (transport keygen %v)", time.Since(start), keygen)
	if joiner.transport.priv != nil || joiner.transport.pub != nil {
		t.Fatal("transport key pair kept after a successful import")
	}

	sealed, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sealed, empty) {
		t.Fatal("import did not re-seal the file")
	}
	secrets := [][]byte{[]byte(testPassphrase)}
	for _, e := range member.set {
		secrets = append(secrets, e.key)
	}
	wire, _ := b.MarshalBinary()
	for _, s := range secrets {
		if bytes.Contains(sealed, s) || bytes.Contains(wire, s) || bytes.Contains(pub, s) {
			t.Fatal("a DK or the passphrase appears in the sealed file, the bundle or the public key")
		}
	}
	assertOnlyFile(t, cfg.Path)

	if err := joiner.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, cfg)
	if vs, _ := again.DomainKeyVersions(ctx); !slices.Equal(vs, []uint32{1, 2}) {
		t.Fatalf("after restart the joiner holds %v, want [1 2]", vs)
	}
	for i, e := range again.set {
		if !bytes.Equal(e.key, member.set[i].key) {
			t.Fatalf("dk v%d differs from the member's", e.version)
		}
	}
	if pt, err := again.Unwrap(ctx, 1, blob); err != nil || string(pt) != "material wrapped before enrolment" {
		t.Fatalf("Unwrap after restart: %v", err)
	}
}

// A node awaiting enrolment restarts into the same state; OpenOrCreateEmpty
// does not replace an existing file.
func TestEmptyFileReopens(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h, err := OpenOrCreateEmpty(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Health(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Health = %v, want ErrNoDomainKey", err)
	}
	_ = h.Close()
	if _, err := CreateEmpty(ctx, cfg); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateEmpty over a file: %v, want ErrExists", err)
	}
	h = mustOpen(t, cfg)
	if _, err := h.CurrentDomainKeyVersion(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("CurrentDomainKeyVersion = %v, want ErrNoDomainKey", err)
	}
	// A member's file opens through OpenOrCreateEmpty untouched.
	mcfg := testConfig(t)
	_ = mustCreate(t, mcfg).Close()
	m, err := OpenOrCreateEmpty(ctx, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if vs, _ := m.DomainKeyVersions(ctx); !slices.Equal(vs, []uint32{1}) {
		t.Fatalf("member file opened with %v", vs)
	}
	if _, err := OpenOrCreateEmpty(ctx, Config{Path: cfg.Path, Passphrase: []byte("short")}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("short passphrase: %v", err)
	}
	if _, err := Open(ctx, Config{Path: cfg.Path + ".none", Passphrase: []byte(testPassphrase)}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// A failed write while importing leaves the joiner as it was: no DK in
// memory, the old file, and the transport key still there for a retry.
func TestImportWriteFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	member := mustCreate(t, testConfig(t))
	cfg := testConfig(t)
	joiner := mustCreateEmpty(t, cfg)
	pub, err := joiner.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := member.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	// rename(2) cannot replace a non-empty directory, even as root.
	moved := cfg.Path + ".moved"
	if err := os.Rename(cfg.Path, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.Path+"/blocker", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := joiner.ImportDomainKeys(ctx, b); err == nil {
		t.Fatal("import succeeded with the file path blocked")
	}
	if err := joiner.Health(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Health after a failed import = %v", err)
	}
	if err := os.RemoveAll(cfg.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, cfg.Path); err != nil {
		t.Fatal(err)
	}
	if err := joiner.ImportDomainKeys(ctx, b); err != nil {
		t.Fatalf("retry after the path was freed: %v", err)
	}
}
