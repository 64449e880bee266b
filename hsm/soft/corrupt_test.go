package soft

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

// openBytes writes file over cfg.Path and opens it.
func openBytes(t *testing.T, cfg Config, file []byte) error {
	t.Helper()
	if err := os.WriteFile(cfg.Path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := Open(context.Background(), cfg)
	if err == nil {
		_ = h.Close()
	}
	return err
}

// kdfOffsets are the bytes holding the argon2id parameters. Flipping them
// blindly could ask for gigabytes of memory (within bounds, so honoured),
// so the test changes them by small steps instead.
const kdfStart, kdfEnd = 10, 19

func TestCorruptedFileIsRefused(t *testing.T) {
	cfg := testConfig(t)
	if err := mustCreate(t, cfg).Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	expectBad := func(what string, file []byte) {
		t.Helper()
		if err := openBytes(t, cfg, file); !errors.Is(err, hsm.ErrBadPassphrase) {
			t.Fatalf("%s: err = %v, want hsm.ErrBadPassphrase", what, err)
		}
	}
	for i := range good {
		if i >= kdfStart && i < kdfEnd {
			continue
		}
		m := bytes.Clone(good)
		m[i] ^= 1 << (i % 8)
		expectBad("bit flipped in byte "+strconv.Itoa(i), m)
	}
	for _, tc := range []struct {
		what string
		off  int
		edit func([]byte)
	}{
		{"time+1", 10, func(b []byte) { binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(b)+1) }},
		{"memory+1MiB", 14, func(b []byte) { binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(b)+1024) }},
		{"threads+1", 18, func(b []byte) { b[0]++ }},
	} {
		m := bytes.Clone(good)
		tc.edit(m[tc.off:])
		expectBad(tc.what, m)
	}
	for _, n := range []int{0, 1, 7, 8, headerLen - 1, headerLen, headerLen + 4, len(good) - 1, len(good) - gcmTagLen} {
		expectBad("truncated to "+strconv.Itoa(n), good[:n])
	}
	expectBad("one byte appended", append(bytes.Clone(good), 0))
	expectBad("a DK entry's worth appended", append(bytes.Clone(good), make([]byte, entryLen)...))

	// The untouched file still opens: the loop above did not pass by
	// breaking the test setup.
	if err := openBytes(t, cfg, good); err != nil {
		t.Fatalf("original file: %v", err)
	}
}

func TestHostileHeaderRefusedBeforeDerivation(t *testing.T) {
	cfg := testConfig(t)
	if err := mustCreate(t, cfg).Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		off  int
		val  uint32
	}{
		{"memory 4 TiB", 14, 0xffffffff},
		{"memory 1 KiB", 14, 1},
		{"time 2^32-1", 10, 0xffffffff},
		{"time 0", 10, 0},
	} {
		m := bytes.Clone(good)
		binary.BigEndian.PutUint32(m[tc.off:], tc.val)
		err := openBytes(t, cfg, m)
		if !errors.Is(err, hsm.ErrBadPassphrase) || !errors.Is(err, ErrFormat) {
			t.Fatalf("%s: err = %v, want ErrBadPassphrase and ErrFormat", tc.what, err)
		}
	}
	m := bytes.Clone(good)
	binary.BigEndian.PutUint16(m[8:], formatVersion+1)
	if err := openBytes(t, cfg, m); !errors.Is(err, ErrFormat) {
		t.Fatalf("newer format version: err = %v, want ErrFormat", err)
	}
	big := append(bytes.Clone(good), make([]byte, maxFileLen)...)
	if err := openBytes(t, cfg, big); !errors.Is(err, ErrFormat) {
		t.Fatalf("oversized file: err = %v, want ErrFormat", err)
	}
}

func TestParseSetRejects(t *testing.T) {
	entry := func(v uint32) []byte {
		return append(binary.BigEndian.AppendUint32(nil, v), make([]byte, dkLen)...)
	}
	set := func(count uint32, entries ...[]byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, count)
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	for _, tc := range []struct {
		what string
		b    []byte
	}{
		{"empty", nil},
		{"count says 2, holds 1", set(2, entry(1))},
		{"version 0", set(1, entry(0))},
		{"descending", set(2, entry(2), entry(1))},
		{"duplicate", set(2, entry(1), entry(1))},
		{"trailing byte", append(set(1, entry(1)), 0)},
		{"huge count", set(0xffffffff, entry(1))},
	} {
		if _, err := parseSet(tc.b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", tc.what, err)
		}
	}
	// No versions is a node awaiting enrolment (CreateEmpty).
	if got, err := parseSet(set(0)); err != nil || len(got) != 0 {
		t.Fatalf("empty set: %v, %v", got, err)
	}
	got, err := parseSet(set(2, entry(1), entry(5)))
	if err != nil || len(got) != 2 || got[1].version != 5 {
		t.Fatalf("valid gapped set: %v, %v", got, err)
	}
}
