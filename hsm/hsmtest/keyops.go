package hsmtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"sync"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

// RunKeyOpsContract runs the contract of hsm.KeyOps (protection level HSM)
// against HSMs made by open, which must have the KeyOps capability and hold a
// domain key. Each subtest gets its own HSM and closes it at the end. The
// test keys' plaintext is known to the suite, so every result is checked
// against Go's crypto: what the HSM seals Go opens and the other way
// round, MACs are equal, signatures verify.
func RunKeyOpsContract(t *testing.T, open func(t *testing.T) hsm.HSM) {
	t.Helper()
	get := func(t *testing.T) keyOpsHSM {
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
		ko, ok := h.KeyOps()
		if !ok || ko == nil {
			t.Fatalf("%T has no KeyOps capability", h)
		}
		return keyOpsHSM{HSM: h, keyOps: ko}
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h keyOpsHSM)
	}{
		{"AESGCM", testAESGCM},
		{"GCMNonce", testGCMNonce},
		{"GCMTamper", testGCMTamper},
		{"HMAC", testHMAC},
		{"RSASign", testRSASign},
		{"ECDSASign", testECDSASign},
		{"SignInput", testSignInput},
		{"OAEP", testOAEP},
		{"ImportErrors", testImportErrors},
		{"WrongKind", testWrongKind},
		{"Destroy", testDestroy},
		{"Closed", testKeyOpsClosed},
		{"CancelledContext", testKeyOpsCancelled},
		{"Concurrent", testKeyOpsConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, get(t)) })
	}
	t.Run("ForeignHandle", func(t *testing.T) { testForeignHandle(t, get(t), get(t)) })
}

// keyOpsHSM is an HSM under test with its KeyOps.
type keyOpsHSM struct {
	hsm.HSM
	keyOps
}

// keyOps is hsm.KeyOps under a name that does not hide HSM's accessor
// KeyOps when embedded.
type keyOps = hsm.KeyOps

// importKey wraps material under the current DK version and imports it.
func importKey(t *testing.T, h keyOpsHSM, material []byte, kind hsm.KeyKind) hsm.KeyHandle {
	t.Helper()
	kh, err := h.ImportWrapped(context.Background(), currentDK(t, h), wrapOrFatal(t, h, material), kind)
	if err != nil {
		t.Fatalf("ImportWrapped(kind %d): %v", kind, err)
	}
	if kh == nil || kh.Kind() != kind {
		t.Fatalf("ImportWrapped(kind %d) gave handle %v", kind, kh)
	}
	return kh
}

func currentDK(t *testing.T, h hsm.HSM) uint32 {
	t.Helper()
	v, err := h.CurrentDomainKeyVersion(context.Background())
	if err != nil {
		t.Fatalf("CurrentDomainKeyVersion: %v", err)
	}
	return v
}

func wrapOrFatal(t *testing.T, h hsm.HSM, material []byte) []byte {
	t.Helper()
	blob, err := h.Wrap(context.Background(), currentDK(t, h), material)
	if err != nil {
		t.Fatalf("Wrap %d bytes: %v", len(material), err)
	}
	return blob
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func goGCM(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

func testAESGCM(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	key := randomBytes(t, 32)
	kh := importKey(t, h, key, hsm.KindAES256)
	g := goGCM(t, key)
	for _, n := range []int{0, 1, 32, 4096} {
		for _, aad := range [][]byte{nil, []byte("key=k-1 v=3 ctx=billing")} {
			name := fmt.Sprintf("%d bytes, %d aad", n, len(aad))
			pt, nonce := randomBytes(t, n), randomBytes(t, 12)
			sealed, err := h.EncryptGCM(ctx, kh, nonce, pt, aad)
			if err != nil {
				t.Fatalf("%s: EncryptGCM: %v", name, err)
			}
			// GCM is deterministic for a key and nonce: the HSM's output
			// must be exactly Go's, not merely openable.
			if want := g.Seal(nil, nonce, pt, aad); !bytes.Equal(sealed, want) {
				t.Fatalf("%s: EncryptGCM differs from Go's AES-GCM", name)
			}
			nonce2 := randomBytes(t, 12)
			got, err := h.DecryptGCM(ctx, kh, nonce2, g.Seal(nil, nonce2, pt, aad), aad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s: DecryptGCM of Go's seal = %x, %v", name, got, err)
			}
		}
	}
}

func testGCMNonce(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	kh := importKey(t, h, randomBytes(t, 32), hsm.KindAES256)
	sealed, err := h.EncryptGCM(ctx, kh, make([]byte, 12), []byte("m"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 8, 11, 13, 16} {
		nonce := make([]byte, n)
		if n == 0 {
			nonce = nil
		}
		out, err := h.EncryptGCM(ctx, kh, nonce, []byte("m"), nil)
		wantErr(t, fmt.Sprintf("EncryptGCM with %d-byte nonce", n), err, hsm.ErrInvalidInput)
		if out != nil {
			t.Errorf("EncryptGCM with %d-byte nonce returned output", n)
		}
		_, err = h.DecryptGCM(ctx, kh, nonce, sealed, nil)
		wantErr(t, fmt.Sprintf("DecryptGCM with %d-byte nonce", n), err, hsm.ErrInvalidInput)
	}
}

func testGCMTamper(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	kh := importKey(t, h, randomBytes(t, 32), hsm.KindAES256)
	nonce, aad, pt := randomBytes(t, 12), []byte("aad"), []byte("attack at dawn")
	sealed, err := h.EncryptGCM(ctx, kh, nonce, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	otherNonce := bytes.Clone(nonce)
	otherNonce[0] ^= 1
	for _, c := range []struct {
		name              string
		nonce, sealed, ad []byte
	}{
		{"flipped ciphertext", nonce, flip(0), aad},
		{"flipped tag", nonce, flip(len(sealed) - 1), aad},
		{"wrong aad", nonce, sealed, []byte("aae")},
		{"missing aad", nonce, sealed, nil},
		{"wrong nonce", otherNonce, sealed, aad},
		{"truncated", nonce, sealed[:len(sealed)-1], aad},
		{"tag only", nonce, sealed[len(pt):], aad},
		{"shorter than a tag", nonce, sealed[:15], aad},
		{"empty", nonce, nil, aad},
		{"extended", nonce, append(bytes.Clone(sealed), 0), aad},
	} {
		out, err := h.DecryptGCM(ctx, kh, c.nonce, c.sealed, c.ad)
		wantErr(t, c.name, err, hsm.ErrUnwrap)
		if out != nil {
			t.Errorf("%s: DecryptGCM returned %d bytes with its error", c.name, len(out))
		}
	}
	// The failures above must leave the key usable.
	if got, err := h.DecryptGCM(ctx, kh, nonce, sealed, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("DecryptGCM after failures = %q, %v", got, err)
	}
}

// hmacKinds are the HMAC kinds with their hash and key size.
var hmacKinds = []struct {
	kind hsm.KeyKind
	size int
	hash func() hash.Hash
}{
	{hsm.KindHMACSHA256, 32, sha256.New},
	{hsm.KindHMACSHA384, 48, sha512.New384},
	{hsm.KindHMACSHA512, 64, sha512.New},
}

func testHMAC(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	for _, hk := range hmacKinds {
		key := randomBytes(t, hk.size)
		kh := importKey(t, h, key, hk.kind)
		for _, msg := range [][]byte{{}, []byte("abc"), randomBytes(t, 10000)} {
			got, err := h.HMAC(ctx, kh, msg)
			if err != nil {
				t.Fatalf("HMAC kind %d: %v", hk.kind, err)
			}
			m := hmac.New(hk.hash, key)
			m.Write(msg)
			if want := m.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("HMAC kind %d of %d bytes = %x, want %x", hk.kind, len(msg), got, want)
			}
		}
	}
}

func testKeyOpsConcurrent(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	key := randomBytes(t, 32)
	aesH := importKey(t, h, key, hsm.KindAES256)
	macKey := randomBytes(t, 32)
	macH := importKey(t, h, macKey, hsm.KindHMACSHA256)
	ecKey := testECKey(t, 0)
	ecH := importKey(t, h, pkcs8(t, ecKey), hsm.KindECDSAPrivate)
	g := goGCM(t, key)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 12 {
				pt := []byte(fmt.Sprintf("worker %d message %d", w, i))
				nonce := make([]byte, 12)
				if _, err := rand.Read(nonce); err != nil {
					t.Error(err)
					return
				}
				sealed, err := h.EncryptGCM(ctx, aesH, nonce, pt, pt[:6])
				if err != nil {
					t.Errorf("EncryptGCM: %v", err)
					return
				}
				if got, err := g.Open(nil, nonce, sealed, pt[:6]); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Go cannot open the HSM's seal: %v", err)
					return
				}
				if got, err := h.DecryptGCM(ctx, aesH, nonce, sealed, pt[:6]); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("DecryptGCM = %q, %v", got, err)
					return
				}
				mac, err := h.HMAC(ctx, macH, pt)
				m := hmac.New(sha256.New, macKey)
				m.Write(pt)
				if err != nil || !hmac.Equal(mac, m.Sum(nil)) {
					t.Errorf("HMAC = %x, %v", mac, err)
					return
				}
				if i%4 == 0 {
					d := sha256.Sum256(pt)
					sig, err := h.Sign(ctx, ecH, cryptoSHA256, false, d[:])
					if err != nil || !verifyECDSA(ecKey, d[:], sig) {
						t.Errorf("ECDSA Sign: %v (or signature does not verify)", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
