package keywrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 5649 section 6.
func TestRFC5649Vectors(t *testing.T) {
	kek := "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	tests := []struct {
		name, key, wrapped string
	}{
		{"20 octets", "c37b7e6492584340bed12207808941155068f738",
			"138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"7 octets", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, key, want := unhex(t, kek), unhex(t, tc.key), unhex(t, tc.wrapped)
			got, err := WrapKey(k, key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, want %x", got, want)
			}
			back, err := UnwrapKey(k, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, key) {
				t.Fatalf("unwrap = %x, want %x", back, key)
			}
		})
	}
}

func newBlock(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripManyLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kl := range []int{16, 24, 32} {
		kek := make([]byte, kl)
		fill(rng, kek)
		b := newBlock(t, kek)
		lengths := []int{1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 64, 255, 256, 1218, 2400, 4096}
		for n := 1; n <= 80; n++ {
			lengths = append(lengths, n)
		}
		for _, n := range lengths {
			pt := make([]byte, n)
			fill(rng, pt)
			orig := bytes.Clone(pt)
			w, err := Wrap(b, pt)
			if err != nil {
				t.Fatalf("kek %d len %d: wrap: %v", kl, n, err)
			}
			if len(w) != WrappedLen(n) || len(w)%8 != 0 || len(w) < n+8 {
				t.Fatalf("kek %d len %d: wrapped length %d", kl, n, len(w))
			}
			if !bytes.Equal(pt, orig) {
				t.Fatalf("kek %d len %d: Wrap modified its input", kl, n)
			}
			got, err := Unwrap(b, w)
			if err != nil {
				t.Fatalf("kek %d len %d: unwrap: %v", kl, n, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("kek %d len %d: round trip mismatch", kl, n)
			}
		}
	}
}

// A plaintext that ends in zero bytes must keep them: the length indicator,
// not the padding, decides where the plaintext ends.
func TestTrailingZerosKept(t *testing.T) {
	b := newBlock(t, make([]byte, 32))
	for n := 1; n <= 17; n++ {
		pt := make([]byte, n) // all zero
		w, err := Wrap(b, pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unwrap(b, w)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("len %d: got %d bytes back", n, len(got))
		}
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	kek := make([]byte, 32)
	fill(rng, kek)
	b := newBlock(t, kek)
	for _, n := range []int{1, 7, 8, 9, 20, 32, 33, 64} {
		pt := make([]byte, n)
		fill(rng, pt)
		w, err := Wrap(b, pt)
		if err != nil {
			t.Fatal(err)
		}
		for bit := 0; bit < len(w)*8; bit++ {
			m := bytes.Clone(w)
			m[bit/8] ^= 1 << (bit % 8)
			if got, err := Unwrap(b, m); !errors.Is(err, ErrIntegrity) || got != nil {
				t.Fatalf("len %d bit %d: err = %v, got %d bytes", n, bit, err, len(got))
			}
		}
	}
}

func TestWrongKEKFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	k1, k2 := make([]byte, 32), make([]byte, 32)
	fill(rng, k1)
	fill(rng, k2)
	for _, n := range []int{1, 8, 9, 32, 2400} {
		pt := make([]byte, n)
		fill(rng, pt)
		w, err := WrapKey(k1, pt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnwrapKey(k2, w); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("len %d: unwrap under another KEK: err = %v, want ErrIntegrity", n, err)
		}
	}
}

// Forge blobs whose AIV prefix is right but whose length indicator or
// padding is wrong, so each of the three checks is seen to fail on its own.
func TestAIVChecks(t *testing.T) {
	b := newBlock(t, make([]byte, 16))
	forge := func(aiv [8]byte, body []byte) []byte {
		buf := append(aiv[:], body...)
		if len(buf) == 16 {
			b.Encrypt(buf, buf)
		} else {
			wrapRounds(b, buf)
		}
		return buf
	}
	aiv := func(prefix [4]byte, mli uint32) [8]byte {
		var a [8]byte
		copy(a[:4], prefix[:])
		a[4], a[5], a[6], a[7] = byte(mli>>24), byte(mli>>16), byte(mli>>8), byte(mli)
		return a
	}
	tests := []struct {
		name string
		blob []byte
		ok   bool
	}{
		{"valid 5 in 8", forge(aiv(aivPrefix, 5), []byte{1, 2, 3, 4, 5, 0, 0, 0}), true},
		{"valid 16 in 16", forge(aiv(aivPrefix, 16), bytes.Repeat([]byte{9}, 16)), true},
		{"RFC 3394 IV", forge([8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}, make([]byte, 16)), false},
		{"mli zero", forge(aiv(aivPrefix, 0), make([]byte, 8)), false},
		{"mli too big", forge(aiv(aivPrefix, 9), make([]byte, 8)), false},
		{"mli too small", forge(aiv(aivPrefix, 8), make([]byte, 16)), false},
		{"mli huge", forge(aiv(aivPrefix, 0xffffffff), make([]byte, 16)), false},
		{"nonzero pad", forge(aiv(aivPrefix, 5), []byte{1, 2, 3, 4, 5, 0, 1, 0}), false},
		{"nonzero last pad", forge(aiv(aivPrefix, 13), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 0, 1}), false},
	}
	for _, tc := range tests {
		_, err := Unwrap(b, tc.blob)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: err = %v, want ErrIntegrity", tc.name, err)
		}
	}
}

func TestBadLengthsAndKeys(t *testing.T) {
	b := newBlock(t, make([]byte, 16))
	if _, err := Wrap(b, nil); !errors.Is(err, ErrLength) {
		t.Errorf("empty plaintext: %v", err)
	}
	if err := checkPlaintextLen(MaxPlaintext); err != nil {
		t.Errorf("max plaintext refused: %v", err)
	}
	if err := checkPlaintextLen(MaxPlaintext + 1); !errors.Is(err, ErrLength) {
		t.Errorf("oversized plaintext: %v", err)
	}
	for _, n := range []int{0, 1, 8, 15, 17, 23, 25} {
		if _, err := Unwrap(b, make([]byte, n)); !errors.Is(err, ErrLength) {
			t.Errorf("%d-byte blob: %v", n, err)
		}
	}
	if _, err := WrapKey(make([]byte, 15), []byte("x")); !errors.Is(err, ErrKEK) {
		t.Errorf("15-byte KEK: %v", err)
	}
	if _, err := UnwrapKey(nil, make([]byte, 16)); !errors.Is(err, ErrKEK) {
		t.Errorf("nil KEK: %v", err)
	}
	if _, err := Wrap(nil, []byte("x")); !errors.Is(err, ErrKEK) {
		t.Errorf("nil block: %v", err)
	}
	d, err := des.NewCipher(make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Wrap(d, []byte("x")); !errors.Is(err, ErrKEK) {
		t.Errorf("8-byte block: %v", err)
	}
	if _, err := Unwrap(d, make([]byte, 16)); !errors.Is(err, ErrKEK) {
		t.Errorf("8-byte block: %v", err)
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func BenchmarkUnwrap32(b *testing.B) {
	blk := newBlock(b, make([]byte, 32))
	w, err := Wrap(blk, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unwrap(blk, w); err != nil {
			b.Fatal(err)
		}
	}
}
