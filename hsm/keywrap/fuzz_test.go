package keywrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzUnwrap feeds arbitrary blobs to Unwrap under a fixed KEK. Nothing may
// panic, every failure must be one of the sentinels, and anything that does
// unwrap must wrap back to exactly the same blob (RFC 5649 is
// deterministic), which catches a check that lets a malformed blob through.
func FuzzUnwrap(f *testing.F) {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, s := range []string{
		"138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
		"afbeb0f07dfbf5419200f2ccb50bb24f",
		"", "00", "0000000000000000", "00000000000000000000000000000000",
		"a65959a600000001000000000000000000000000000000000000000000000000",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	blk := newBlock(f, kek)
	for _, n := range []int{1, 8, 9, 32, 64, 100} {
		w, err := Wrap(blk, bytes.Repeat([]byte{byte(n)}, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		pt, err := Unwrap(blk, blob)
		if err != nil {
			if !errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrLength) {
				t.Fatalf("unexpected error %v", err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		again, err := Wrap(blk, pt)
		if err != nil {
			t.Fatalf("rewrap: %v", err)
		}
		if !bytes.Equal(again, blob) {
			t.Fatalf("blob %x unwrapped but rewraps to %x", blob, again)
		}
	})
}
