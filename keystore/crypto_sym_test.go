package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEncryptDecryptRoundTrip(t *testing.T) { bothLevels(t, testEncryptDecryptRoundTrip) }

func testEncryptDecryptRoundTrip(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	format, nonce := formatSymmetric, 24
	if level == ProtectionHSM {
		format, nonce = formatHSMSymmetric, 12
	}
	k := h.create("", "")
	other := h.create("", "")
	ectx := map[string]string{"tenant": "acme", "purpose": "test"}
	for _, size := range []int{1, 32, 4096} {
		pt := bytes.Repeat([]byte{0xab}, size)
		out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ectx})
		must(t, err)
		if out.KeyID != k.KeyID || out.KeyVersion != 1 || out.EncryptionAlgorithm != EncSymmetricDefault ||
			len(out.CiphertextBlob) != 2+36+4+nonce+size+16 || out.CiphertextBlob[0] != format {
			t.Fatalf("size %d: output %+v (blob %d bytes)", size, out, len(out.CiphertextBlob))
		}
		for _, keyID := range []string{"", k.KeyID, "meridian:key/" + k.KeyID} {
			d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ectx, KeyID: keyID})
			must(t, err)
			if !bytes.Equal(d.Plaintext, pt) || d.KeyID != k.KeyID || d.KeyVersion != 1 || d.EncryptionAlgorithm != EncSymmetricDefault {
				t.Fatalf("decrypt %+v", d)
			}
		}
		_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ectx, KeyID: other.KeyID})
		wantErr(t, err, ErrIncorrectKey, other.KeyID)
		_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ectx, KeyID: "alias/none"})
		wantErr(t, err, ErrNotFound, "")
	}
	// Two encryptions of the same plaintext differ (fresh nonces).
	a, _ := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("same")})
	b, _ := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("same")})
	if bytes.Equal(a.CiphertextBlob, b.CiphertextBlob) {
		t.Fatal("two encryptions gave the same blob")
	}
}

func TestEncryptValidation(t *testing.T) { bothLevels(t, testEncryptValidation) }

func testEncryptValidation(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	mac := h.create(SpecHMAC256, "")
	signer := h.create(SpecECCP256, "")
	tests := []struct {
		name string
		in   EncryptInput
		kind error
		msg  string
	}{
		{"empty plaintext", EncryptInput{KeyID: k.KeyID}, ErrValidation, "plaintext is 0 bytes; must be 1-4096"},
		{"oversized plaintext", EncryptInput{KeyID: k.KeyID, Plaintext: make([]byte, 4097)}, ErrValidation, "plaintext is 4097 bytes; must be 1-4096"},
		{"no key", EncryptInput{Plaintext: []byte("x")}, ErrValidation, "key id is required"},
		{"malformed key", EncryptInput{KeyID: "k-1", Plaintext: []byte("x")}, ErrValidation, "malformed"},
		{"unknown key", EncryptInput{KeyID: "00000000-0000-4000-8000-000000000000", Plaintext: []byte("x")}, ErrNotFound, ""},
		{"unknown algorithm", EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: "ROT13"}, ErrValidation, "ROT13"},
		{"rsa algorithm", EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: EncRSAOAEPSHA256}, ErrInvalidKeyUsage, "not valid for key"},
		{"mac key", EncryptInput{KeyID: mac.KeyID, Plaintext: []byte("x")}, ErrInvalidKeyUsage, "GENERATE_VERIFY_MAC"},
		{"sign key", EncryptInput{KeyID: signer.KeyID, Plaintext: []byte("x")}, ErrInvalidKeyUsage, "SIGN_VERIFY"},
		{"empty context key", EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: map[string]string{"": "v"}}, ErrValidation, "must not be empty"},
		{"huge context", EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: map[string]string{"k": strings.Repeat("v", 9000)}}, ErrValidation, "encryption context is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.Encrypt(bg, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	_, err := h.s.Decrypt(bg, DecryptInput{})
	wantErr(t, err, ErrValidation, "ciphertext blob is 0 bytes; must be 1-6144")
	_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: make([]byte, 6145)})
	wantErr(t, err, ErrValidation, "6144")
}

// Every way a blob can be wrong gives the very same error value: no oracle.
func TestInvalidCiphertextNoOracle(t *testing.T) { bothLevels(t, testInvalidCiphertextNoOracle) }

func testInvalidCiphertextNoOracle(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	ectx := map[string]string{"a": "1", "b": "2"}
	out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("attack at dawn"), EncryptionContext: ectx})
	must(t, err)
	blob := out.CiphertextBlob
	check := func(what string, b []byte, c map[string]string) {
		t.Helper()
		_, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: b, EncryptionContext: c})
		if err != errInvalidCiphertext {
			t.Fatalf("%s: error %v, want the one InvalidCiphertext value", what, err)
		}
	}
	check("no context", blob, nil)
	check("wrong value", blob, map[string]string{"a": "1", "b": "3"})
	check("extra pair", blob, map[string]string{"a": "1", "b": "2", "c": "3"})
	check("missing pair", blob, map[string]string{"a": "1"})
	check("shifted boundary", blob, map[string]string{"a": "12", "b": ""})
	for i := range blob {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(blob)
			b[i] ^= bit
			check(fmt.Sprintf("bit %#x of byte %d flipped", bit, i), b, ectx)
		}
	}
	for n := 1; n < len(blob); n++ {
		check(fmt.Sprintf("truncated to %d", n), blob[:n], ectx)
	}
	check("extended", append(bytes.Clone(blob), 0), ectx)
	foreign := make([]byte, len(blob))
	rand.Read(foreign)
	check("random bytes", foreign, ectx)
	// A well-formed header naming an unknown key, and an unknown version.
	b := bytes.Clone(blob)
	copy(b[2:], "00000000-0000-4000-8000-000000000000")
	check("unknown key", b, ectx)
	b = bytes.Clone(blob)
	binary.BigEndian.PutUint32(b[2+36:], 7)
	check("unknown version", b, ectx)
	// A blob made under another key with this key's id pasted in.
	other := h.create("", "")
	o, _ := h.s.Encrypt(bg, EncryptInput{KeyID: other.KeyID, Plaintext: []byte("x")})
	b = bytes.Clone(o.CiphertextBlob)
	copy(b[2:], k.KeyID)
	check("other key's blob", b, nil)
	// A symmetric blob pointing at an HMAC key.
	mac := h.create(SpecHMAC256, "")
	b = bytes.Clone(blob)
	copy(b[2:], mac.KeyID)
	check("blob naming an HMAC key", b, ectx)
	// An AWS-looking blob.
	check("aws blob", append([]byte{0x01, 0x02, 0x02, 0x00, 0x78}, foreign...), nil)

	if err := errInvalidCiphertext; !strings.Contains(err.Error(), "ciphertext is invalid") {
		t.Fatalf("message %q", err)
	}
}

func TestRotationOlderVersionsDecrypt(t *testing.T) { bothLevels(t, testRotationOlderVersionsDecrypt) }

func testRotationOlderVersionsDecrypt(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	var blobs [][]byte
	for v := uint32(1); v <= 4; v++ {
		out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte(fmt.Sprint("v", v))})
		must(t, err)
		if out.KeyVersion != v {
			t.Fatalf("encrypt after %d rotations used version %d", v-1, out.KeyVersion)
		}
		blobs = append(blobs, out.CiphertextBlob)
		if v < 4 {
			h.clock.Advance(time.Hour)
			r, wr, err := h.s.RotateKeyOnDemand(bg, k.KeyID)
			must(t, err)
			if r.KeyVersion != v+1 || r.RotationType != RotationOnDemand || r.KeyID != k.KeyID || wr.CommitIndex == 0 ||
				!r.RotationDate.Equal(h.clock.Now()) {
				t.Fatalf("rotation %+v", r)
			}
		}
	}
	for i, b := range blobs {
		d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: b})
		must(t, err)
		if string(d.Plaintext) != fmt.Sprint("v", i+1) || d.KeyVersion != uint32(i+1) {
			t.Fatalf("blob %d decrypted to %q v%d", i, d.Plaintext, d.KeyVersion)
		}
	}
	m, _ := h.s.DescribeKey(bg, k.KeyID)
	if m.CurrentVersion != 4 {
		t.Fatalf("current version %d", m.CurrentVersion)
	}
	p, err := h.s.ListKeyRotations(bg, k.KeyID, 2, "")
	must(t, err)
	if len(p.Items) != 2 || p.Items[0].KeyVersion != 2 || !p.Truncated || p.NextMarker != "3" {
		t.Fatalf("rotations page 1 %+v", p)
	}
	p, err = h.s.ListKeyRotations(bg, k.KeyID, 2, p.NextMarker)
	must(t, err)
	if len(p.Items) != 1 || p.Items[0].KeyVersion != 4 || p.Truncated {
		t.Fatalf("rotations page 2 %+v", p)
	}
	_, err = h.s.ListKeyRotations(bg, k.KeyID, 2, "x")
	wantErr(t, err, ErrValidation, "marker")
	st, err := h.s.GetKeyRotationStatus(bg, k.KeyID)
	must(t, err)
	if st.RotationEnabled || !st.OnDemandStartDate.Equal(h.clock.Now()) {
		t.Fatalf("status %+v", st)
	}
}
