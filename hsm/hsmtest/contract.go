// Package hsmtest holds the contract every hsm.HSM backend must meet, as a
// test suite each backend's tests run (soft, and PKCS#11 over SoftHSM2).
// Keystore relies on exactly these properties, so a backend that passes can
// replace another without keystore noticing. It also holds the contract
// every decorator of an HSM must meet (RunDecoratorContract, over Stub).
package hsmtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

// MaterialSizes are the plaintext sizes the contract wraps: AES and HMAC
// keys (16..64), PKCS#8 EC keys (P-256 138, P-384 185, P-521 241) and
// PKCS#8 RSA-2048 (1218) and RSA-4096 (about 2400) keys.
var MaterialSizes = []int{16, 32, 48, 64, 138, 185, 241, 1218, 2400}

// RunContract runs the contract against HSMs made by open. Every subtest
// calls open once and gets its own HSM, which must already hold at least
// one domain key version; RunContract closes it when the subtest ends (so
// open need not), tolerating hsm.ErrClosed from a second Close.
func RunContract(t *testing.T, open func(t *testing.T) hsm.HSM) {
	t.Helper()
	get := func(t *testing.T) hsm.HSM {
		t.Helper()
		h := open(t)
		if h == nil {
			t.Fatal("open returned a nil HSM")
		}
		t.Cleanup(func() {
			if err := h.Close(); err != nil && !errors.Is(err, hsm.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return h
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h hsm.HSM)
	}{
		{"Versions", testVersions},
		{"RoundTrip", testRoundTrip},
		{"Tamper", testTamper},
		{"UnknownVersion", testUnknownVersion},
		{"InvalidInput", testInvalidInput},
		{"Random", testRandom},
		{"Health", testHealth},
		{"CancelledContext", testCancelled},
		{"Closed", testClosed},
		{"Concurrent", testConcurrent},
		{"Capabilities", testCapabilities},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, get(t)) })
	}
}

// versions returns the DK versions, failing the test unless there is at
// least one, they ascend strictly, and the current one is the newest.
func versions(t *testing.T, h hsm.HSM) []uint32 {
	t.Helper()
	ctx := context.Background()
	vs, err := h.DomainKeyVersions(ctx)
	if err != nil {
		t.Fatalf("DomainKeyVersions: %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("DomainKeyVersions is empty: the contract needs an HSM holding a DK")
	}
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			t.Fatalf("DomainKeyVersions %v not strictly ascending", vs)
		}
	}
	cur, err := h.CurrentDomainKeyVersion(ctx)
	if err != nil {
		t.Fatalf("CurrentDomainKeyVersion: %v", err)
	}
	if !slices.Contains(vs, cur) {
		t.Fatalf("current DK version %d not in %v", cur, vs)
	}
	if cur != vs[len(vs)-1] {
		t.Fatalf("current DK version %d is not the newest of %v", cur, vs)
	}
	return vs
}

func testVersions(t *testing.T, h hsm.HSM) {
	vs := versions(t, h)
	// The caller owns the returned slice: changing it must not change the HSM.
	vs[0] = 0xdeadbeef
	if again := versions(t, h); again[0] == 0xdeadbeef {
		t.Fatal("DomainKeyVersions returned the HSM's own slice")
	}
	if h.Info().Backend == "" {
		t.Error("Info().Backend is empty")
	}
}

func random(t *testing.T, h hsm.HSM, n int) []byte {
	t.Helper()
	b, err := h.Random(context.Background(), n)
	if err != nil {
		t.Fatalf("Random(%d): %v", n, err)
	}
	if len(b) != n {
		t.Fatalf("Random(%d) returned %d bytes", n, len(b))
	}
	return b
}

func wrap(t *testing.T, h hsm.HSM, v uint32, material []byte) []byte {
	t.Helper()
	w, err := h.Wrap(context.Background(), v, material)
	if err != nil {
		t.Fatalf("Wrap %d bytes under DK v%d: %v", len(material), v, err)
	}
	return w
}

func unwrap(t *testing.T, h hsm.HSM, v uint32, blob []byte) []byte {
	t.Helper()
	pt, err := h.Unwrap(context.Background(), v, blob)
	if err != nil {
		t.Fatalf("Unwrap %d-byte blob under DK v%d: %v", len(blob), v, err)
	}
	return pt
}

func testRoundTrip(t *testing.T, h hsm.HSM) {
	for _, v := range versions(t, h) {
		for _, n := range MaterialSizes {
			material := random(t, h, n)
			orig := bytes.Clone(material)
			w := wrap(t, h, v, material)
			if !bytes.Equal(material, orig) {
				t.Fatalf("v%d size %d: Wrap modified its input", v, n)
			}
			if len(w) < n+8 {
				t.Fatalf("v%d size %d: wrapped blob only %d bytes", v, n, len(w))
			}
			if bytes.Equal(w[:n], material) {
				t.Fatalf("v%d size %d: wrapped blob starts with the plaintext", v, n)
			}
			// No 8-byte run of the material may appear anywhere in the blob.
			for i := 0; i+8 <= n; i++ {
				if bytes.Contains(w, material[i:i+8]) {
					t.Fatalf("v%d size %d: plaintext bytes %d..%d appear in the wrapped blob", v, n, i, i+8)
				}
			}
			got := unwrap(t, h, v, w)
			if !bytes.Equal(got, material) {
				t.Fatalf("v%d size %d: unwrap does not give the material back", v, n)
			}
			// The result belongs to the caller (keystore wipes it).
			clear(got)
			if again := unwrap(t, h, v, w); !bytes.Equal(again, material) {
				t.Fatalf("v%d size %d: wiping an unwrap result changed a later unwrap", v, n)
			}
		}
	}
}

func expectUnwrapFails(t *testing.T, h hsm.HSM, v uint32, blob []byte, what string) {
	t.Helper()
	pt, err := h.Unwrap(context.Background(), v, blob)
	if !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("%s: Unwrap err = %v, want hsm.ErrUnwrap", what, err)
	}
	if pt != nil {
		t.Fatalf("%s: Unwrap returned plaintext with its error", what)
	}
}

func testTamper(t *testing.T, h hsm.HSM) {
	vs := versions(t, h)
	cur := vs[len(vs)-1]
	small := wrap(t, h, cur, random(t, h, 32))
	for bit := 0; bit < len(small)*8; bit++ {
		m := bytes.Clone(small)
		m[bit/8] ^= 1 << (bit % 8)
		expectUnwrapFails(t, h, cur, m, "32-byte material, bit flipped")
	}
	big := wrap(t, h, cur, random(t, h, 2400))
	for _, i := range []int{0, 7, 8, 15, len(big) / 2, len(big) - 9, len(big) - 1} {
		m := bytes.Clone(big)
		m[i] ^= 0x80
		expectUnwrapFails(t, h, cur, m, "2400-byte material, byte flipped")
	}
	for _, tc := range []struct {
		what string
		blob []byte
	}{
		{"nil blob", nil},
		{"empty blob", []byte{}},
		{"one byte", []byte{0}},
		{"truncated by one byte", small[:len(small)-1]},
		{"truncated by 8 bytes", small[:len(small)-8]},
		{"extended by 8 zero bytes", append(bytes.Clone(small), make([]byte, 8)...)},
		{"two blobs spliced", append(bytes.Clone(small[:16]), big[16:]...)},
		{"all zeros", make([]byte, len(small))},
	} {
		expectUnwrapFails(t, h, cur, tc.blob, tc.what)
	}
	// A blob made under one DK version must not open under another.
	for _, v := range vs[:len(vs)-1] {
		expectUnwrapFails(t, h, v, small, "blob unwrapped under an older DK version")
	}
}

func testUnknownVersion(t *testing.T, h hsm.HSM) {
	ctx := context.Background()
	vs := versions(t, h)
	blob := wrap(t, h, vs[len(vs)-1], random(t, h, 32))
	for _, v := range []uint32{0, vs[len(vs)-1] + 1, 1<<32 - 1} {
		if slices.Contains(vs, v) {
			continue
		}
		if _, err := h.Wrap(ctx, v, make([]byte, 32)); !errors.Is(err, hsm.ErrNoDomainKey) {
			t.Errorf("Wrap under unknown DK v%d: err = %v, want hsm.ErrNoDomainKey", v, err)
		}
		if _, err := h.Unwrap(ctx, v, blob); !errors.Is(err, hsm.ErrNoDomainKey) {
			t.Errorf("Unwrap under unknown DK v%d: err = %v, want hsm.ErrNoDomainKey", v, err)
		}
	}
}

func testInvalidInput(t *testing.T, h hsm.HSM) {
	ctx := context.Background()
	cur := versions(t, h)[0]
	for _, m := range [][]byte{nil, {}} {
		if _, err := h.Wrap(ctx, cur, m); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("Wrap of empty material: err = %v, want hsm.ErrInvalidInput", err)
		}
	}
	if _, err := h.Random(ctx, -1); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("Random(-1): err = %v, want hsm.ErrInvalidInput", err)
	}
	// A caller's mistake is not a device failure.
	if err := h.Health(ctx); err != nil {
		t.Errorf("Health after invalid input: %v", err)
	}
}

func testRandom(t *testing.T, h hsm.HSM) {
	for _, n := range []int{0, 1, 16, 32, 1024} {
		random(t, h, n)
	}
	if b := random(t, h, 1024); bytes.Equal(b, make([]byte, 1024)) {
		t.Fatal("Random(1024) returned all zeros")
	}
	seen := make(map[string]bool)
	for range 64 {
		b := string(random(t, h, 16))
		if seen[b] {
			t.Fatal("Random(16) repeated a value within 64 draws")
		}
		seen[b] = true
	}
}

func testHealth(t *testing.T, h hsm.HSM) {
	if err := h.Health(context.Background()); err != nil {
		t.Fatalf("Health of an open HSM holding a DK: %v", err)
	}
}

// testCapabilities: each accessor gives a capability exactly when it says
// so, and the same answer every time.
func testCapabilities(t *testing.T, h hsm.HSM) {
	for _, c := range Capabilities {
		has, ok := c.Has(h)
		if ok != has {
			t.Errorf("%s() = (value present %v, %v)", c, has, ok)
		}
		if _, again := c.Has(h); again != ok {
			t.Errorf("%s() said %v, then %v", c, ok, again)
		}
	}
}
