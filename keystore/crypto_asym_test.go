package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
)

func TestSignVerifyEveryAlgorithm(t *testing.T) { bothLevels(t, testSignVerifyEveryAlgorithm) }

func testSignVerifyEveryAlgorithm(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	rsaKey := h.create(SpecRSA2048, UsageSignVerify)
	keys := map[SigningAlgorithm]KeyMetadata{SignECDSASHA256: h.create(SpecECCP256, ""), SignECDSASHA384: h.create(SpecECCP384, ""),
		SignECDSASHA512: h.create(SpecECCP521, "")}
	for _, a := range rsaSignAlgs {
		keys[a] = rsaKey
	}
	msg := []byte("the message")
	for alg, k := range keys {
		for _, mt := range []MessageType{"", MessageRaw, MessageDigest} {
			t.Run(fmt.Sprintf("%s/%s", alg, mt), func(t *testing.T) {
				info := signAlgs[alg]
				hh := info.hash.New()
				hh.Write(msg)
				digest := hh.Sum(nil)
				in := msg
				if mt == MessageDigest {
					in = digest
				}
				s, err := h.s.Sign(bg, SignInput{KeyID: k.KeyID, Message: in, MessageType: mt, SigningAlgorithm: alg})
				must(t, err)
				if s.KeyID != k.KeyID || s.KeyVersion != 1 || s.SigningAlgorithm != alg {
					t.Fatalf("sign output %+v", s)
				}
				v, err := h.s.Verify(bg, VerifyInput{KeyID: k.KeyID, Message: in, MessageType: mt, Signature: s.Signature, SigningAlgorithm: alg})
				must(t, err)
				if !v.SignatureValid {
					t.Fatal("not valid")
				}
				// The signature verifies with the standard library and the
				// published public key: it is a standard signature.
				pk, err := h.s.GetPublicKey(bg, k.KeyID)
				must(t, err)
				pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
				must(t, err)
				switch p := pub.(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(p, digest, s.Signature) {
						t.Fatal("stdlib rejects the ECDSA signature")
					}
				case *rsa.PublicKey:
					if info.pss {
						err = rsa.VerifyPSS(p, info.hash, digest, s.Signature, &rsa.PSSOptions{SaltLength: info.hash.Size()})
					} else {
						err = rsa.VerifyPKCS1v15(p, info.hash, digest, s.Signature)
					}
					must(t, err)
				}
				bad := bytes.Clone(in)
				bad[0] ^= 1
				_, err = h.s.Verify(bg, VerifyInput{KeyID: k.KeyID, Message: bad, MessageType: mt, Signature: s.Signature, SigningAlgorithm: alg})
				wantErr(t, err, ErrInvalidSignature, "not valid")
			})
		}
	}
}

func TestSignValidation(t *testing.T) { bothLevels(t, testSignValidation) }

func testSignValidation(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	p256 := h.create(SpecECCP256, "")
	rsaEnc := h.create(SpecRSA2048, UsageEncryptDecrypt)
	tests := []struct {
		name string
		in   SignInput
		kind error
		msg  string
	}{
		{"no algorithm", SignInput{KeyID: p256.KeyID, Message: []byte("m")}, ErrValidation, "signing algorithm is required"},
		{"unknown algorithm", SignInput{KeyID: p256.KeyID, Message: []byte("m"), SigningAlgorithm: "DSA"}, ErrValidation, "DSA"},
		{"empty message", SignInput{KeyID: p256.KeyID, SigningAlgorithm: SignECDSASHA256}, ErrValidation, "message is 0 bytes; must be 1-4096"},
		{"oversized message", SignInput{KeyID: p256.KeyID, Message: make([]byte, 4097), SigningAlgorithm: SignECDSASHA256}, ErrValidation, "4097"},
		{"short digest", SignInput{KeyID: p256.KeyID, Message: make([]byte, 31), MessageType: MessageDigest, SigningAlgorithm: SignECDSASHA256}, ErrValidation, "needs 32 bytes"},
		{"bad message type", SignInput{KeyID: p256.KeyID, Message: []byte("m"), MessageType: "HASH", SigningAlgorithm: SignECDSASHA256}, ErrValidation, "RAW or DIGEST"},
		{"rsa alg on ecc", SignInput{KeyID: p256.KeyID, Message: []byte("m"), SigningAlgorithm: SignRSAPSSSHA256}, ErrInvalidKeyUsage, "not valid for key"},
		{"other curve hash", SignInput{KeyID: p256.KeyID, Message: []byte("m"), SigningAlgorithm: SignECDSASHA384}, ErrInvalidKeyUsage, "ECC_NIST_P256"},
		{"encryption key", SignInput{KeyID: rsaEnc.KeyID, Message: []byte("m"), SigningAlgorithm: SignRSAPSSSHA256}, ErrInvalidKeyUsage, "SIGN_VERIFY"},
		{"unknown key", SignInput{KeyID: "alias/x", Message: []byte("m"), SigningAlgorithm: SignECDSASHA256}, ErrNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.Sign(bg, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	_, err := h.s.Verify(bg, VerifyInput{KeyID: p256.KeyID, Message: []byte("m"), SigningAlgorithm: SignECDSASHA256})
	wantErr(t, err, ErrValidation, "signature is 0 bytes")
	_, err = h.s.Verify(bg, VerifyInput{KeyID: p256.KeyID, Message: []byte("m"), Signature: []byte("junk"), SigningAlgorithm: SignECDSASHA256})
	wantErr(t, err, ErrInvalidSignature, "")
	sym := h.create("", "")
	_, err = h.s.GetPublicKey(bg, sym.KeyID)
	wantErr(t, err, ErrUnsupported, "only asymmetric keys")
}

func TestRSAEncryption(t *testing.T) { bothLevels(t, testRSAEncryption) }

func testRSAEncryption(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create(SpecRSA2048, "")
	pk, err := h.s.GetPublicKey(bg, k.KeyID)
	must(t, err)
	if fmt.Sprint(pk.EncryptionAlgorithms) != "[RSAES_OAEP_SHA_1 RSAES_OAEP_SHA_256]" || pk.SigningAlgorithms != nil || pk.KeyUsage != UsageEncryptDecrypt {
		t.Fatalf("public key output %+v", pk)
	}
	pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	must(t, err)
	for alg, max := range map[EncryptionAlgorithm]int{EncRSAOAEPSHA1: 214, EncRSAOAEPSHA256: 190} {
		pt := bytes.Repeat([]byte{7}, max)
		out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: alg})
		must(t, err)
		if out.CiphertextBlob[0] != formatRSA || out.EncryptionAlgorithm != alg || len(out.CiphertextBlob) != 2+36+4+256 {
			t.Fatalf("%s output %+v", alg, out)
		}
		d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: alg})
		must(t, err)
		if !bytes.Equal(d.Plaintext, pt) || d.KeyID != k.KeyID || d.EncryptionAlgorithm != alg {
			t.Fatalf("decrypt %+v", d)
		}
		_, err = h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: append(pt, 1), EncryptionAlgorithm: alg})
		wantErr(t, err, ErrValidation, fmt.Sprintf("takes at most %d", max))

		// A client encrypting offline with the public key builds a blob by
		// prefixing the header.
		ct, err := rsa.EncryptOAEP(oaepHash[alg].New(), rand.Reader, pub.(*rsa.PublicKey), []byte("offline"), nil)
		must(t, err)
		blob := append(bytes.Clone(out.CiphertextBlob[:2+36+4]), ct...)
		d, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: blob, EncryptionAlgorithm: alg, KeyID: k.KeyID})
		must(t, err)
		if string(d.Plaintext) != "offline" {
			t.Fatalf("offline blob decrypted to %q", d.Plaintext)
		}
	}
	out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: EncRSAOAEPSHA256})
	must(t, err)
	_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob})
	wantErr(t, err, ErrValidation, "encryption algorithm is required with RSA key")
	_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: EncSymmetricDefault})
	wantErr(t, err, ErrInvalidKeyUsage, "")
	_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: EncRSAOAEPSHA1})
	if err != errInvalidCiphertext {
		t.Fatalf("wrong OAEP hash: %v", err)
	}
	b := bytes.Clone(out.CiphertextBlob)
	b[len(b)-1] ^= 1
	_, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: b, EncryptionAlgorithm: EncRSAOAEPSHA256})
	if err != errInvalidCiphertext {
		t.Fatalf("flipped bit: %v", err)
	}
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	wantErr(t, err, ErrValidation, "encryption algorithm is required")
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: EncRSAOAEPSHA1,
		EncryptionContext: map[string]string{"a": "b"}})
	wantErr(t, err, ErrValidation, "only with symmetric keys")
}

func TestReEncrypt(t *testing.T) { bothLevels(t, testReEncrypt) }

func testReEncrypt(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	a, b := h.create("", ""), h.create("", "")
	r := h.create(SpecRSA2048, "")
	ca, cb := map[string]string{"from": "a"}, map[string]string{"to": "b"}
	src, err := h.s.Encrypt(bg, EncryptInput{KeyID: a.KeyID, Plaintext: []byte("secret"), EncryptionContext: ca})
	must(t, err)

	out, err := h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, SourceEncryptionContext: ca, SourceKeyID: a.KeyID,
		DestinationKeyID: b.KeyID, DestinationEncryptionContext: cb})
	must(t, err)
	if out.SourceKeyID != a.KeyID || out.SourceKeyVersion != 1 || out.KeyID != b.KeyID || out.KeyVersion != 1 {
		t.Fatalf("output %+v", out)
	}
	d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: cb})
	must(t, err)
	if string(d.Plaintext) != "secret" || d.KeyID != b.KeyID {
		t.Fatalf("decrypt %+v", d)
	}

	toRSA, err := h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, SourceEncryptionContext: ca,
		DestinationKeyID: r.KeyID, DestinationEncryptionAlgorithm: EncRSAOAEPSHA256})
	must(t, err)
	back, err := h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: toRSA.CiphertextBlob, SourceEncryptionAlgorithm: EncRSAOAEPSHA256,
		DestinationKeyID: "meridian:key/" + a.KeyID})
	must(t, err)
	d, err = h.s.Decrypt(bg, DecryptInput{CiphertextBlob: back.CiphertextBlob})
	must(t, err)
	if string(d.Plaintext) != "secret" {
		t.Fatalf("round trip via RSA gave %q", d.Plaintext)
	}

	_, err = h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, DestinationKeyID: b.KeyID})
	if err != errInvalidCiphertext {
		t.Fatalf("missing source context: %v", err)
	}
	_, err = h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, SourceEncryptionContext: ca})
	wantErr(t, err, ErrValidation, "destination key id is required")
	_, err = h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, SourceEncryptionContext: ca, SourceKeyID: b.KeyID, DestinationKeyID: b.KeyID})
	wantErr(t, err, ErrIncorrectKey, "")
	_, err = h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: src.CiphertextBlob, SourceEncryptionContext: ca, DestinationKeyID: r.KeyID})
	wantErr(t, err, ErrValidation, "encryption algorithm is required")
}

func TestDataKeys(t *testing.T) { bothLevels(t, testDataKeys) }

func testDataKeys(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	ectx := map[string]string{"bucket": "b1"}
	for _, tc := range []struct {
		spec DataKeySpec
		n    int
		want int
	}{{DataKeyAES128, 0, 16}, {DataKeyAES256, 0, 32}, {"", 1, 1}, {"", 1024, 1024}} {
		out, err := h.s.GenerateDataKey(bg, GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: tc.spec, NumberOfBytes: tc.n, EncryptionContext: ectx})
		must(t, err)
		if len(out.Plaintext) != tc.want || out.KeyID != k.KeyID || out.KeyVersion != 1 {
			t.Fatalf("%v/%d: %d-byte plaintext, %+v", tc.spec, tc.n, len(out.Plaintext), out.KeyID)
		}
		d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ectx})
		must(t, err)
		if !bytes.Equal(d.Plaintext, out.Plaintext) {
			t.Fatal("data key does not decrypt to its plaintext")
		}
	}
	out, err := h.s.GenerateDataKey(bg, GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: DataKeyAES256, WithoutPlaintext: true})
	must(t, err)
	if out.Plaintext != nil {
		t.Fatal("WithoutPlaintext returned a plaintext")
	}
	if d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob}); err != nil || len(d.Plaintext) != 32 {
		t.Fatalf("decrypt of plaintext-less data key: %v", err)
	}
	rsaKey := h.create(SpecRSA2048, "")
	tests := []struct {
		name string
		in   GenerateDataKeyInput
		kind error
		msg  string
	}{
		{"both", GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: DataKeyAES128, NumberOfBytes: 16}, ErrValidation, "not both"},
		{"neither", GenerateDataKeyInput{KeyID: k.KeyID}, ErrValidation, "give a key spec"},
		{"too many bytes", GenerateDataKeyInput{KeyID: k.KeyID, NumberOfBytes: 1025}, ErrValidation, "number of bytes is 1025; must be 1-1024"},
		{"negative bytes", GenerateDataKeyInput{KeyID: k.KeyID, NumberOfBytes: -1}, ErrValidation, "must be 1-1024"},
		{"bad spec", GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: "AES_512"}, ErrValidation, "AES_512"},
		{"rsa key", GenerateDataKeyInput{KeyID: rsaKey.KeyID, KeySpec: DataKeyAES256}, ErrInvalidKeyUsage, "SYMMETRIC_DEFAULT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.GenerateDataKey(bg, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
}

func TestDataKeyPairs(t *testing.T) { bothLevels(t, testDataKeyPairs) }

func testDataKeyPairs(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	ectx := map[string]string{"use": "pair"}
	for _, spec := range []DataKeyPairSpec{PairRSA2048, PairECCP256, PairECCP384, PairECCP521} {
		t.Run(string(spec), func(t *testing.T) {
			out, err := h.s.GenerateDataKeyPair(bg, GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: spec, EncryptionContext: ectx})
			must(t, err)
			if out.KeyPairSpec != spec || out.KeyID != k.KeyID {
				t.Fatalf("output %+v", out)
			}
			d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ectx})
			must(t, err)
			if !bytes.Equal(d.Plaintext, out.PrivateKeyPlaintext) {
				t.Fatal("private key blob does not decrypt to the plaintext private key")
			}
			priv, err := x509.ParsePKCS8PrivateKey(d.Plaintext)
			must(t, err)
			pub, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
			must(t, err)
			if !bytes.Equal(pub, out.PublicKey) {
				t.Fatal("public key does not match the private key")
			}
		})
	}
	out, err := h.s.GenerateDataKeyPair(bg, GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: PairECCP256, WithoutPlaintext: true})
	must(t, err)
	if out.PrivateKeyPlaintext != nil || len(out.PublicKey) == 0 {
		t.Fatal("WithoutPlaintext returned a private key")
	}
	_, err = h.s.GenerateDataKeyPair(bg, GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: "DSA_1024"})
	wantErr(t, err, ErrValidation, "key pair spec \"DSA_1024\"")
	_, err = h.s.GenerateDataKeyPair(bg, GenerateDataKeyPairInput{KeyID: k.KeyID})
	wantErr(t, err, ErrValidation, "key pair spec")
}

func TestMacs(t *testing.T) { bothLevels(t, testMacs) }

func testMacs(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	for spec, alg := range map[KeySpec]MacAlgorithm{SpecHMAC256: MacHMACSHA256, SpecHMAC384: MacHMACSHA384, SpecHMAC512: MacHMACSHA512} {
		t.Run(string(spec), func(t *testing.T) {
			k := h.create(spec, "")
			out, err := h.s.GenerateMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("msg"), MacAlgorithm: alg})
			must(t, err)
			if len(out.Mac) != macAlgs[alg].Size() || out.KeyVersion != 1 || out.MacAlgorithm != alg {
				t.Fatalf("output %+v", out)
			}
			again, _ := h.s.GenerateMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("msg"), MacAlgorithm: alg})
			if !bytes.Equal(again.Mac, out.Mac) {
				t.Fatal("MAC is not deterministic")
			}
			v, err := h.s.VerifyMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("msg"), Mac: out.Mac, MacAlgorithm: alg})
			must(t, err)
			if !v.MacValid {
				t.Fatal("not valid")
			}
			_, err = h.s.VerifyMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("msh"), Mac: out.Mac, MacAlgorithm: alg})
			wantErr(t, err, ErrInvalidMac, "not valid")
			_, err = h.s.VerifyMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("msg"), Mac: out.Mac[:10], MacAlgorithm: alg})
			wantErr(t, err, ErrInvalidMac, "")
		})
	}
	k := h.create(SpecHMAC256, "")
	sym := h.create("", "")
	tests := []struct {
		name string
		in   MacInput
		kind error
		msg  string
	}{
		{"empty message", MacInput{KeyID: k.KeyID, MacAlgorithm: MacHMACSHA256}, ErrValidation, "message is 0 bytes; must be 1-4096"},
		{"oversized message", MacInput{KeyID: k.KeyID, Message: make([]byte, 4097), MacAlgorithm: MacHMACSHA256}, ErrValidation, "4097"},
		{"no algorithm", MacInput{KeyID: k.KeyID, Message: []byte("m")}, ErrValidation, "MAC algorithm is required"},
		{"unknown algorithm", MacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: "HMAC_MD5"}, ErrValidation, "HMAC_MD5"},
		{"algorithm of another spec", MacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA512}, ErrInvalidKeyUsage, "HMAC_256"},
		{"encryption key", MacInput{KeyID: sym.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256}, ErrInvalidKeyUsage, "GENERATE_VERIFY_MAC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.GenerateMac(bg, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	_, err := h.s.VerifyMac(bg, MacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
	wantErr(t, err, ErrValidation, "MAC is 0 bytes")
}

func TestGenerateRandom(t *testing.T) {
	h := newHarness(t, Config{})
	for _, n := range []int{1, 1024} {
		b, err := h.s.GenerateRandom(bg, n)
		must(t, err)
		if len(b) != n {
			t.Fatalf("%d bytes, want %d", len(b), n)
		}
	}
	for _, n := range []int{0, -1, 1025} {
		_, err := h.s.GenerateRandom(bg, n)
		wantErr(t, err, ErrValidation, "must be 1-1024")
		if !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Fatalf("message %q does not give the number", err)
		}
	}
}
