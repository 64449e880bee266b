package keystore

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// sampleBlobs are seeds: a real symmetric and RSA blob shape, and junk.
func sampleBlobs() [][]byte {
	id := "0b4c7b8e-8d4b-4c55-9d2a-3f1e0c9b7a61"
	sym, _ := appendHeader(nil, formatSymmetric, id, 3)
	sym = append(sym, bytes.Repeat([]byte{0xaa}, 24+5+16)...)
	rsa, _ := appendHeader(nil, formatRSA, id, 1)
	rsa = append(rsa, bytes.Repeat([]byte{0x55}, 256)...)
	gcm, _ := appendHeader(nil, formatHSMSymmetric, id, 2)
	gcm = append(gcm, bytes.Repeat([]byte{0x33}, 12+5+16)...)
	return [][]byte{sym, rsa, gcm, {}, {0x01}, {0x01, 0x00}, {0x02, 0xff, 0x01}, {0x03, 0x01, 'a', 0, 0, 0, 1}, []byte("not a blob at all")}
}

// FuzzParseCiphertext: the parser never panics, and whatever it accepts is
// consistent with the bytes (the header re-encodes to the same prefix and
// header plus body is the whole input).
func FuzzParseCiphertext(f *testing.F) {
	for _, b := range sampleBlobs() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parseCiphertext(b)
		if !ok {
			return
		}
		if len(c.header)+len(c.body) != len(b) || c.version == 0 || len(c.keyID) == 0 {
			t.Fatalf("inconsistent parse of %x: %+v", b, c)
		}
		h, err := appendHeader(nil, c.format, string(c.keyID), c.version)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, h) {
			t.Fatalf("header %x does not re-encode to the prefix of %x", h, b)
		}
		if c.format == formatSymmetric && (len(c.nonce) != 24 || len(c.body) < 16) {
			t.Fatalf("symmetric blob with nonce %d bytes, body %d", len(c.nonce), len(c.body))
		}
		if c.format == formatHSMSymmetric && (len(c.nonce) != 12 || len(c.body) < 16) {
			t.Fatalf("HSM-level symmetric blob with nonce %d bytes, body %d", len(c.nonce), len(c.body))
		}
	})
}

// FuzzDecrypt: Decrypt on arbitrary bytes never panics and, unless the bytes
// are a real blob or out of the size range, gives the one InvalidCiphertext
// error. The seeds include real blobs of this store's keys, at both
// protection levels.
func FuzzDecrypt(f *testing.F) {
	h := newHarness(f, Config{})
	sym := h.create("", "")
	rsaKey := h.create(SpecRSA2048, "")
	h.level = ProtectionHSM
	hsmSym := h.create("", "")
	hsmRSA := h.create(SpecRSA2048, "")
	var real [][]byte
	for _, in := range []EncryptInput{
		{KeyID: sym.KeyID, Plaintext: []byte("seed")},
		{KeyID: rsaKey.KeyID, Plaintext: []byte("seed"), EncryptionAlgorithm: EncRSAOAEPSHA256},
		{KeyID: hsmSym.KeyID, Plaintext: []byte("seed")},
		{KeyID: hsmRSA.KeyID, Plaintext: []byte("seed"), EncryptionAlgorithm: EncRSAOAEPSHA256},
	} {
		e, err := h.s.Encrypt(bg, in)
		must(f, err)
		real = append(real, e.CiphertextBlob)
	}
	for _, b := range append(sampleBlobs(), real...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, alg := range []EncryptionAlgorithm{"", EncRSAOAEPSHA256} {
			_, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: b, EncryptionAlgorithm: alg})
			switch {
			case err == nil:
				if !slices.ContainsFunc(real, func(r []byte) bool { return bytes.Equal(b, r) }) {
					t.Fatalf("foreign bytes %x decrypted", b)
				}
			case err == errInvalidCiphertext:
			case len(b) == 0 || len(b) > maxCiphertext:
				if !errors.Is(err, ErrValidation) {
					t.Fatalf("out-of-range blob: %v", err)
				}
			case errors.Is(err, ErrValidation), errors.Is(err, ErrInvalidKeyUsage):
				// The algorithm does not fit the (real) key the blob names:
				// about the request, not the bytes' validity.
				if len(b) < 2 || len(b) < 2+int(b[1]) {
					t.Fatalf("usage error %v for a blob naming no key", err)
				}
				if _, ok := h.fsm.Key(string(b[2 : 2+int(b[1])])); !ok {
					t.Fatalf("usage error %v for a blob naming an unknown key", err)
				}
			default:
				t.Fatalf("Decrypt(%x): %v", b, err)
			}
		}
	})
}
