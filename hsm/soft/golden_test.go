package soft

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The golden file is a format-version-1 sealed file with DK versions 1 and
// 2, plus a blob wrapped under each. Opening it proves that a file written
// by an earlier build still opens, so the format cannot change by accident.
// Regenerate only for a deliberate format change (which also needs a new
// format version and a reader for the old one):
//
//	go test ./hsm/soft -run TestGoldenFile -update-golden
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/v1.sealed and testdata/v1.blobs")

const (
	goldenFile  = "testdata/v1.sealed"
	goldenBlobs = "testdata/v1.blobs"
)

// goldenMaterial is what each golden blob wraps: 32 bytes for v1, 48 for v2.
func goldenMaterial(v uint32) []byte {
	b := make([]byte, 16+16*v)
	for i := range b {
		b[i] = byte(i) ^ byte(v)
	}
	return b
}

func goldenConfig() Config {
	return Config{Path: goldenFile, Passphrase: []byte(testPassphrase), KDF: testKDF}
}

func TestGoldenFile(t *testing.T) {
	ctx := context.Background()
	if *updateGolden {
		writeGolden(t)
	}
	// Open a copy so the test never rewrites the committed file.
	cfg := goldenConfig()
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path = filepath.Join(t.TempDir(), "v1.sealed")
	if err := os.WriteFile(cfg.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h := mustOpen(t, cfg)
	if vs, _ := h.DomainKeyVersions(ctx); !slices.Equal(vs, []uint32{1, 2}) {
		t.Fatalf("golden versions %v, want [1 2]", vs)
	}
	blobs, err := os.ReadFile(goldenBlobs)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(blobs))
	if len(lines) != 2 {
		t.Fatalf("%s holds %d blobs, want 2", goldenBlobs, len(lines))
	}
	for i, line := range lines {
		v := uint32(i + 1)
		blob, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Unwrap(ctx, v, blob)
		if err != nil || !bytes.Equal(got, goldenMaterial(v)) {
			t.Fatalf("golden blob v%d: %v", v, err)
		}
		// Wrap is deterministic (RFC 5649), so the blob also pins the
		// wrap format.
		again, err := h.Wrap(ctx, v, goldenMaterial(v))
		if err != nil || !bytes.Equal(again, blob) {
			t.Fatalf("wrap of golden material v%d differs from the golden blob: %v", v, err)
		}
	}
}

func writeGolden(t *testing.T) {
	ctx := context.Background()
	_ = os.Remove(goldenFile)
	if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := Create(ctx, goldenConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.RotateDomainKey(ctx); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for v := uint32(1); v <= 2; v++ {
		b, err := h.Wrap(ctx, v, goldenMaterial(v))
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(hex.EncodeToString(b) + "\n")
	}
	if err := os.WriteFile(goldenBlobs, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
