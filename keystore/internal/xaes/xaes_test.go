package xaes

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The two fixed vectors of c2sp.org/XAES-256-GCM, with the intermediate
// values so that a failure points at the step that broke.
func TestVectors(t *testing.T) {
	tests := []struct {
		name       string
		key        byte
		k1, kx     string
		ad         string
		ciphertext string
	}{
		{
			name:       "top bit of L clear",
			key:        0x01,
			k1:         "e531954aca063d5b8d9c47a47d4cc6f0",
			kx:         "c8612c9ed53fe43e8e005b828a1631a0bbcb6ab2f46514ec4f439fcfd0fa969b",
			ciphertext: "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
		},
		{
			name:       "top bit of L set",
			key:        0x03,
			k1:         "23810ec50edb99f374409466ed1f4b7b",
			kx:         "e9c621d4cdd9b11b00a6427ad7e559aeedd66b3857646677748f8ca796cb3fd8",
			ad:         "c2sp.org/XAES-256-GCM",
			ciphertext: "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
		},
	}
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	plaintext := []byte("XAES-256-GCM")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(bytes.Repeat([]byte{tc.key}, KeySize))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(a.k1[:]); got != tc.k1 {
				t.Errorf("K1 = %s, want %s", got, tc.k1)
			}
			var kx [KeySize]byte
			a.deriveKey(nonce, &kx)
			if got := hex.EncodeToString(kx[:]); got != tc.kx {
				t.Errorf("Kx = %s, want %s", got, tc.kx)
			}
			ct := a.Seal(nil, nonce, plaintext, []byte(tc.ad))
			if !bytes.Equal(ct, unhex(t, tc.ciphertext)) {
				t.Fatalf("ciphertext = %x, want %s", ct, tc.ciphertext)
			}
			pt, err := a.Open(nil, nonce, ct, []byte(tc.ad))
			if err != nil || !bytes.Equal(pt, plaintext) {
				t.Fatalf("Open = %q, %v", pt, err)
			}
			if _, err := a.Open(nil, nonce, ct, []byte("other")); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open with other AD: %v, want ErrOpen", err)
			}
		})
	}
}

// The spec's accumulated vector: 10,000 iterations of SHAKE-128-drawn keys,
// nonces, plaintexts and ADs, the ciphertexts hashed with SHAKE-128.
func TestAccumulated(t *testing.T) {
	const want = "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"
	s, d := sha3.NewSHAKE128(), sha3.NewSHAKE128()
	key := make([]byte, KeySize)
	nonce := make([]byte, NonceSize)
	lenByte := make([]byte, 1)
	var ct, pt []byte
	for i := 0; i < 10_000; i++ {
		s.Read(key)
		s.Read(nonce)
		s.Read(lenByte)
		plaintext := make([]byte, int(lenByte[0]))
		s.Read(plaintext)
		s.Read(lenByte)
		ad := make([]byte, int(lenByte[0]))
		s.Read(ad)
		a, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		ct = a.Seal(ct[:0], nonce, plaintext, ad)
		pt, err = a.Open(pt[:0], nonce, ct, ad)
		if err != nil || !bytes.Equal(pt, plaintext) {
			t.Fatalf("iteration %d: round trip failed: %v", i, err)
		}
		d.Write(ct)
	}
	got := make([]byte, 32)
	d.Read(got)
	if hex.EncodeToString(got) != want {
		t.Fatalf("accumulated hash = %x, want %s", got, want)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
	a, err := New(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, NonceSize)
	ct := a.Seal(nil, nonce, []byte("m"), nil)
	for _, c := range []struct {
		name      string
		nonce, ct []byte
	}{
		{"short nonce", nonce[:12], ct},
		{"short ciphertext", nonce, ct[:Overhead-1]},
		{"empty ciphertext", nonce, nil},
		{"truncated tag", nonce, ct[:len(ct)-1]},
	} {
		if _, err := a.Open(nil, c.nonce, c.ct, nil); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", c.name, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Seal with a 12-byte nonce did not panic")
		}
	}()
	a.Seal(nil, nonce[:12], nil, nil)
}

func TestWipe(t *testing.T) {
	a, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	a.Wipe()
	if a.k1 != [16]byte{} || a.block != nil {
		t.Fatal("Wipe left the subkey or the schedule in place")
	}
}

func BenchmarkSeal32(b *testing.B) {
	a, _ := New(make([]byte, KeySize))
	nonce := make([]byte, NonceSize)
	pt := make([]byte, 32)
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		a.Seal(dst[:0], nonce, pt, nil)
	}
}

// Cached must be wire-compatible with the plain AEAD both ways, reuse one
// prefix across NewNonce calls, and keep a bounded open cache.
func TestCachedInterop(t *testing.T) {
	key := bytes.Repeat([]byte{9}, KeySize)
	plain, _ := New(key)
	c, err := NewCached(key)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := make([]byte, NonceSize), make([]byte, NonceSize)
	c.NewNonce(n1)
	c.NewNonce(n2)
	if !bytes.Equal(n1[:12], n2[:12]) || bytes.Equal(n1[12:], n2[12:]) {
		t.Fatalf("nonces %x and %x: want a shared prefix and distinct tails", n1, n2)
	}
	ad := []byte("ad")
	ct := c.Seal(nil, n1, []byte("hello"), ad)
	if pt, err := plain.Open(nil, n1, ct, ad); err != nil || string(pt) != "hello" {
		t.Fatalf("plain Open of Cached Seal = %q, %v", pt, err)
	}
	for i := 0; i < 3*openCacheSize; i++ {
		n := bytes.Repeat([]byte{byte(i)}, NonceSize)
		ct := plain.Seal(nil, n, []byte{byte(i)}, nil)
		pt, err := c.Open(nil, n, ct, nil)
		if err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("Cached Open of plain Seal %d = %x, %v", i, pt, err)
		}
		ct[0] ^= 1
		if _, err := c.Open(nil, n, ct, nil); !errors.Is(err, ErrOpen) {
			t.Fatalf("tampered ciphertext opened: %v", err)
		}
	}
	if len(c.open) > openCacheSize {
		t.Fatalf("open cache holds %d entries, bound %d", len(c.open), openCacheSize)
	}
}

func TestCachedPrefixRotates(t *testing.T) {
	c, _ := NewCached(make([]byte, KeySize))
	n := make([]byte, NonceSize)
	c.NewNonce(n)
	first := append([]byte(nil), n[:12]...)
	c.cur.Load().used.Store(PrefixMessages)
	c.NewNonce(n)
	if bytes.Equal(first, n[:12]) {
		t.Fatal("prefix not re-drawn after PrefixMessages nonces")
	}
	if got := c.cur.Load().used.Load(); got != 1 {
		t.Fatalf("new epoch used = %d, want 1", got)
	}
}

func BenchmarkCachedSeal32(b *testing.B) {
	c, _ := NewCached(make([]byte, KeySize))
	nonce := make([]byte, NonceSize)
	pt := make([]byte, 32)
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		c.NewNonce(nonce)
		c.Seal(dst[:0], nonce, pt, nil)
	}
}
