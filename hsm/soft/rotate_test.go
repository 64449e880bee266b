package soft

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

func TestRotateKeepsOldVersions(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h := mustCreate(t, cfg)
	m1 := bytes.Repeat([]byte{1}, 32)
	b1, err := h.Wrap(ctx, 1, m1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.RotateDomainKey(ctx)
	if err != nil || v != 2 {
		t.Fatalf("RotateDomainKey = %d, %v; want 2", v, err)
	}
	if cur, _ := h.CurrentDomainKeyVersion(ctx); cur != 2 {
		t.Fatalf("current version %d after rotation, want 2", cur)
	}
	m2 := bytes.Repeat([]byte{2}, 32)
	b2, err := h.Wrap(ctx, 2, m2)
	if err != nil {
		t.Fatal(err)
	}
	check := func(h *HSM) {
		t.Helper()
		if vs, _ := h.DomainKeyVersions(ctx); !slices.Equal(vs, []uint32{1, 2}) {
			t.Fatalf("versions %v, want [1 2]", vs)
		}
		for _, c := range []struct {
			v    uint32
			b, m []byte
		}{{1, b1, m1}, {2, b2, m2}} {
			got, err := h.Unwrap(ctx, c.v, c.b)
			if err != nil || !bytes.Equal(got, c.m) {
				t.Fatalf("unwrap under v%d: %v", c.v, err)
			}
		}
		if _, err := h.Unwrap(ctx, 2, b1); !errors.Is(err, hsm.ErrUnwrap) {
			t.Fatalf("v1 blob under v2: err = %v, want ErrUnwrap", err)
		}
	}
	check(h)
	assertOnlyFile(t, cfg.Path)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RotateDomainKey(ctx); !errors.Is(err, hsm.ErrClosed) {
		t.Fatalf("rotate after Close: err = %v, want ErrClosed", err)
	}
	check(mustOpen(t, cfg))
}

// A rotation whose file write fails must leave both the file and the
// in-memory set as they were.
func TestRotateWriteFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	h := mustCreate(t, cfg)
	before, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	// rename(2) cannot replace a non-empty directory, even as root (where
	// permission tricks would not make the write fail).
	moved := cfg.Path + ".moved"
	if err := os.Rename(cfg.Path, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RotateDomainKey(ctx); err == nil {
		t.Fatal("rotation succeeded although the file could not be replaced")
	}
	if vs, _ := h.DomainKeyVersions(ctx); !slices.Equal(vs, []uint32{1}) {
		t.Fatalf("versions %v after a failed rotation, want [1]", vs)
	}
	if err := os.RemoveAll(cfg.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, cfg.Path); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(cfg.Path)
	if !bytes.Equal(before, after) {
		t.Fatal("failed rotation changed the file")
	}
	assertOnlyFile(t, cfg.Path)
	if v, err := h.RotateDomainKey(ctx); err != nil || v != 2 {
		t.Fatalf("rotation after recovery = %d, %v", v, err)
	}
}

// Rotation takes the write lock while other goroutines wrap and unwrap;
// under -race this checks that the set swap is properly published.
func TestRotateDuringUse(t *testing.T) {
	ctx := context.Background()
	h := mustCreate(t, testConfig(t))
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			defer func() { errs <- err }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var v uint32
				if v, err = h.CurrentDomainKeyVersion(ctx); err != nil {
					return
				}
				var blob, got []byte
				if blob, err = h.Wrap(ctx, v, []byte("0123456789abcdef")); err != nil {
					return
				}
				if got, err = h.Unwrap(ctx, v, blob); err != nil {
					return
				}
				if string(got) != "0123456789abcdef" {
					err = errors.New("round trip mismatch")
					return
				}
			}
		}()
	}
	for want := uint32(2); want <= 4; want++ {
		if v, err := h.RotateDomainKey(ctx); err != nil || v != want {
			t.Errorf("RotateDomainKey = %d, %v; want %d", v, err, want)
		}
	}
	close(stop)
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
