package hsmtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // OAEP-SHA-1 is what SoftHSM offers
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sync"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

const cryptoSHA256 = crypto.SHA256

// Test key pairs are generated once per test binary: RSA generation is the
// slow part of the suite, and the keys' values do not matter.
var (
	rsaKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	// A 1024-bit key, which ImportWrapped must refuse.
	rsaSmallOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 1024) })
	ecKeysOnce   = sync.OnceValues(func() ([]*ecdsa.PrivateKey, error) {
		var keys []*ecdsa.PrivateKey
		for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		return keys, nil
	})
)

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsaKeyOnce()
	if err != nil {
		t.Fatalf("generate RSA test key: %v", err)
	}
	return k
}

// testECKey returns the P-256 (0), P-384 (1) or P-521 (2) test key.
func testECKey(t *testing.T, i int) *ecdsa.PrivateKey {
	t.Helper()
	ks, err := ecKeysOnce()
	if err != nil {
		t.Fatalf("generate EC test keys: %v", err)
	}
	return ks[i]
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func verifyECDSA(k *ecdsa.PrivateKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(&k.PublicKey, digest, sig)
}

func digestOf(t *testing.T, h crypto.Hash, msg []byte) []byte {
	t.Helper()
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

var signHashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

func testRSASign(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	key := testRSAKey(t)
	kh := importKey(t, h, pkcs8(t, key), hsm.KindRSAPrivate)
	for _, hh := range signHashes {
		d := digestOf(t, hh, []byte("sign me"))
		sig, err := h.Sign(ctx, kh, hh, true, d)
		if err != nil {
			t.Fatalf("Sign PSS %v: %v", hh, err)
		}
		if err := rsa.VerifyPSS(&key.PublicKey, hh, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Fatalf("PSS %v signature (salt = hash length) does not verify: %v", hh, err)
		}
		sig, err = h.Sign(ctx, kh, hh, false, d)
		if err != nil {
			t.Fatalf("Sign PKCS#1 v1.5 %v: %v", hh, err)
		}
		// PKCS#1 v1.5 is deterministic: the signature must be Go's exactly.
		want, err := rsa.SignPKCS1v15(nil, key, hh, d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig, want) {
			t.Fatalf("PKCS#1 v1.5 %v signature differs from Go's", hh)
		}
	}
}

func testECDSASign(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	for i := range 3 { // P-256, P-384, P-521
		key := testECKey(t, i)
		kh := importKey(t, h, pkcs8(t, key), hsm.KindECDSAPrivate)
		for _, dh := range signHashes { // every curve with every hash, too
			d := digestOf(t, dh, []byte(fmt.Sprintf("curve %s", key.Curve.Params().Name)))
			sig, err := h.Sign(ctx, kh, dh, false, d)
			if err != nil {
				t.Fatalf("ECDSA %s %v: %v", key.Curve.Params().Name, dh, err)
			}
			if !verifyECDSA(key, d, sig) {
				t.Fatalf("ECDSA %s %v: signature does not verify as ASN.1 DER", key.Curve.Params().Name, dh)
			}
		}
	}
}

func testSignInput(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	rsaH := importKey(t, h, pkcs8(t, testRSAKey(t)), hsm.KindRSAPrivate)
	ecH := importKey(t, h, pkcs8(t, testECKey(t, 0)), hsm.KindECDSAPrivate)
	d := digestOf(t, crypto.SHA256, []byte("m"))
	for _, kh := range []hsm.KeyHandle{rsaH, ecH} {
		for _, pss := range []bool{false, true} {
			if kh == ecH && pss {
				continue
			}
			_, err := h.Sign(ctx, kh, crypto.SHA256, pss, d[:31])
			wantErr(t, fmt.Sprintf("kind %d pss %v: short digest", kh.Kind(), pss), err, hsm.ErrInvalidInput)
			_, err = h.Sign(ctx, kh, crypto.SHA384, pss, d)
			wantErr(t, fmt.Sprintf("kind %d pss %v: SHA-256 digest named SHA-384", kh.Kind(), pss), err, hsm.ErrInvalidInput)
			_, err = h.Sign(ctx, kh, crypto.SHA224, pss, d[:28])
			wantErr(t, fmt.Sprintf("kind %d pss %v: SHA-224", kh.Kind(), pss), err, hsm.ErrUnsupported)
			_, err = h.Sign(ctx, kh, crypto.Hash(0), pss, nil)
			wantErr(t, fmt.Sprintf("kind %d pss %v: no hash", kh.Kind(), pss), err, hsm.ErrUnsupported)
		}
	}
	_, err := h.Sign(ctx, ecH, crypto.SHA256, true, d)
	wantErr(t, "PSS with an EC key", err, hsm.ErrInvalidInput)
}

var oaepHashes = map[crypto.Hash]func() hash.Hash{crypto.SHA1: sha1.New, crypto.SHA256: sha256.New, crypto.SHA512: sha512.New}

func testOAEP(t *testing.T, h keyOpsHSM) {
	ctx := context.Background()
	key := testRSAKey(t)
	kh := importKey(t, h, pkcs8(t, key), hsm.KindRSAPrivate)
	msg := []byte("a 32-byte data key goes here....")
	for hh, newHash := range oaepHashes {
		ct, err := rsa.EncryptOAEP(newHash(), rand.Reader, &key.PublicKey, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.DecryptOAEP(ctx, kh, hh, ct)
		switch {
		case hh != crypto.SHA1 && errors.Is(err, hsm.ErrUnsupported):
			// A backend may lack OAEP with this hash (SoftHSM 2.6 does);
			// it must say so, not fail some other way.
			continue
		case err != nil:
			t.Fatalf("DecryptOAEP %v: %v", hh, err)
		case !bytes.Equal(got, msg):
			t.Fatalf("DecryptOAEP %v = %q, want %q", hh, got, msg)
		}
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key.PublicKey, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(ct)
	bad[len(bad)/2] ^= 0x40
	for name, c := range map[string][]byte{
		"flipped bit":   bad,
		"truncated":     ct[:len(ct)-1],
		"extended":      append(bytes.Clone(ct), 0),
		"empty":         nil,
		"all zero":      make([]byte, len(ct)),
		"another label": mustOAEPLabel(t, key, msg),
	} {
		out, err := h.DecryptOAEP(ctx, kh, crypto.SHA1, c)
		wantErr(t, "DecryptOAEP "+name, err, hsm.ErrUnwrap)
		if out != nil {
			t.Errorf("DecryptOAEP %s returned output", name)
		}
	}
	_, err = h.DecryptOAEP(ctx, kh, crypto.MD5, ct)
	wantErr(t, "DecryptOAEP with MD5", err, hsm.ErrUnsupported)
	if got, err := h.DecryptOAEP(ctx, kh, crypto.SHA1, ct); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("DecryptOAEP after failures = %q, %v", got, err)
	}
}

// mustOAEPLabel encrypts msg with a non-empty label, which a decrypt with
// the empty label must refuse.
func mustOAEPLabel(t *testing.T, key *rsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key.PublicKey, msg, []byte("label"))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
