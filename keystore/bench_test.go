package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

// The keystore's symmetric operations against raw AES-256-GCM with a
// pre-built AEAD and a random nonce, in the same run: the target is
// keystore <= 3x raw for 32-byte payloads.

func benchKey(b *testing.B) (*harness, string) {
	return benchLevelKey(b, ProtectionSoftware)
}

func benchLevelKey(b *testing.B, level ProtectionLevel) (*harness, string) {
	h := newLevelHarness(b, Config{}, level)
	k := h.create("", "")
	return h, k.KeyID
}

func BenchmarkKeystoreEncrypt32(b *testing.B) {
	benchEncrypt32(b, ProtectionSoftware)
}

// HSM level on the soft backend: the cost of the KeyOps path itself (a
// PKCS#11 token adds its own C_Encrypt latency on top).
func BenchmarkKeystoreEncrypt32HSMLevel(b *testing.B) {
	benchEncrypt32(b, ProtectionHSM)
}

func benchEncrypt32(b *testing.B, level ProtectionLevel) {
	h, id := benchLevelKey(b, level)
	in := EncryptInput{KeyID: id, Plaintext: make([]byte, 32)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.s.Encrypt(bg, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeystoreDecrypt32(b *testing.B) {
	benchDecrypt32(b, ProtectionSoftware)
}

func BenchmarkKeystoreDecrypt32HSMLevel(b *testing.B) {
	benchDecrypt32(b, ProtectionHSM)
}

func benchDecrypt32(b *testing.B, level ProtectionLevel) {
	h, id := benchLevelKey(b, level)
	out, err := h.s.Encrypt(bg, EncryptInput{KeyID: id, Plaintext: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	in := DecryptInput{CiphertextBlob: out.CiphertextBlob}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.s.Decrypt(bg, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeystoreGenerateDataKey32(b *testing.B) {
	h, id := benchKey(b)
	in := GenerateDataKeyInput{KeyID: id, KeySpec: DataKeyAES256}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.s.GenerateDataKey(bg, in); err != nil {
			b.Fatal(err)
		}
	}
}

func rawGCM(b *testing.B) cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	blk, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkRawGCMSeal32(b *testing.B) {
	g := rawGCM(b)
	pt := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		nonce := make([]byte, 12)
		rand.Read(nonce)
		g.Seal(nonce, nonce, pt, nil)
	}
}

func BenchmarkRawGCMOpen32(b *testing.B) {
	g := rawGCM(b)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	ct := g.Seal(nil, nonce, make([]byte, 32), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Open(nil, nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}
