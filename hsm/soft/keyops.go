package soft

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // OAEP-SHA-1, as SoftHSM offers; see hsm.Enroller
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"hash"
	"sync"

	"github.com/meridiankms/meridian/hsm"
)

// Protection level HSM for the soft backend. Its "HSM" is this process,
// so "non-extractable" means: the handle keeps the parsed key in
// unexported fields and no method returns its bytes. The semantics and
// errors are the PKCS#11 backend's, so one contract suite
// (hsmtest.RunKeyOpsContract) passes for both.

var _ hsm.KeyOps = (*HSM)(nil)

// keyHandle is this backend's hsm.KeyHandle.
type keyHandle struct {
	h    *HSM
	kind hsm.KeyKind

	// Operations hold mu shared; Destroy holds it exclusively and drops
	// the key, so no operation runs on a destroyed key.
	mu      sync.RWMutex
	gone    bool
	aead    cipher.AEAD
	mac     []byte // HMAC key; wiped on Destroy
	macHash func() hash.Hash
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
}

// Kind is the kind the handle was imported as.
func (k *keyHandle) Kind() hsm.KeyKind { return k.kind }

var kindNames = map[hsm.KeyKind]string{
	hsm.KindAES256:       "AES-256",
	hsm.KindHMACSHA256:   "HMAC-SHA-256",
	hsm.KindHMACSHA384:   "HMAC-SHA-384",
	hsm.KindHMACSHA512:   "HMAC-SHA-512",
	hsm.KindRSAPrivate:   "RSA private",
	hsm.KindECDSAPrivate: "EC private",
}

func kindName(k hsm.KeyKind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("unknown kind %d", int(k))
}

var hmacHashes = map[hsm.KeyKind]crypto.Hash{
	hsm.KindHMACSHA256: crypto.SHA256,
	hsm.KindHMACSHA384: crypto.SHA384,
	hsm.KindHMACSHA512: crypto.SHA512,
}

// ImportWrapped unwraps a blob made by Wrap under dkVersion and parses it
// as kind. A blob that fails its integrity check gives hsm.ErrUnwrap; a
// sound blob whose material is not of kind gives hsm.ErrInvalidInput.
func (h *HSM) ImportWrapped(ctx context.Context, dkVersion uint32, wrapped []byte, kind hsm.KeyKind) (hsm.KeyHandle, error) {
	op := fmt.Sprintf("soft hsm: import %s key under dk v%d", kindName(kind), dkVersion)
	if _, ok := kindNames[kind]; !ok {
		if err := h.live(ctx, op); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", op, hsm.ErrInvalidInput)
	}
	raw, err := h.Unwrap(ctx, dkVersion, wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	k := &keyHandle{h: h, kind: kind}
	if err := k.load(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return k, nil
}

// load parses raw material into k. It keeps no reference to raw.
func (k *keyHandle) load(raw []byte) error {
	switch k.kind {
	case hsm.KindAES256:
		if len(raw) != 32 {
			return fmt.Errorf("%d bytes of material for a 32-byte key: %w", len(raw), hsm.ErrInvalidInput)
		}
		b, err := aes.NewCipher(raw)
		if err != nil {
			return fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)
		}
		if k.aead, err = cipher.NewGCM(b); err != nil {
			return fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)
		}
	case hsm.KindHMACSHA256, hsm.KindHMACSHA384, hsm.KindHMACSHA512:
		hh := hmacHashes[k.kind]
		if len(raw) != hh.Size() {
			return fmt.Errorf("%d bytes of material for a %d-byte key: %w", len(raw), hh.Size(), hsm.ErrInvalidInput)
		}
		k.mac, k.macHash = append([]byte(nil), raw...), hh.New
	default:
		return k.loadPrivate(raw)
	}
	return nil
}

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

func (k *keyHandle) loadPrivate(der []byte) error {
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("material is not a PKCS#8 private key: %w", hsm.ErrInvalidInput)
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if k.kind != hsm.KindRSAPrivate {
			return fmt.Errorf("material is an RSA key: %w", hsm.ErrInvalidInput)
		}
		if p.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA modulus of %d bits; at least %d needed: %w", p.N.BitLen(), minRSABits, hsm.ErrInvalidInput)
		}
		k.rsa = p
	case *ecdsa.PrivateKey:
		if k.kind != hsm.KindECDSAPrivate {
			return fmt.Errorf("material is an EC key: %w", hsm.ErrInvalidInput)
		}
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("EC key on a curve other than P-256, P-384, P-521: %w", hsm.ErrInvalidInput)
		}
		k.ec = p
	default:
		return fmt.Errorf("material is a %T, not a %s key: %w", priv, kindName(k.kind), hsm.ErrInvalidInput)
	}
	return nil
}

// Destroy drops the key; later use of the handle gives hsm.ErrHandleInvalid.
// The HMAC key's bytes are wiped; Go's AES, RSA and ECDSA values cannot be,
// and are left to the garbage collector.
func (h *HSM) Destroy(ctx context.Context, kh hsm.KeyHandle) error {
	const op = "soft hsm: destroy key"
	k, err := h.ownKey(kh)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := h.live(ctx, op); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gone {
		return fmt.Errorf("%s: %w", op, hsm.ErrHandleInvalid)
	}
	clear(k.mac)
	k.gone, k.aead, k.mac, k.macHash, k.rsa, k.ec = true, nil, nil, nil, nil, nil
	return nil
}

// live checks the context and that the HSM is open.
func (h *HSM) live(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return fmt.Errorf("%s: %w", op, hsm.ErrClosed)
	}
	return nil
}

// ownKey refuses nil handles and other HSMs' handles: caller bugs.
func (h *HSM) ownKey(kh hsm.KeyHandle) (*keyHandle, error) {
	k, ok := kh.(*keyHandle)
	if !ok || k == nil {
		return nil, fmt.Errorf("handle %T is not this backend's: %w", kh, hsm.ErrInvalidInput)
	}
	if k.h != h {
		return nil, fmt.Errorf("handle belongs to another HSM: %w", hsm.ErrInvalidInput)
	}
	return k, nil
}

// useKey runs fn with the key behind kh after the checks the PKCS#11
// backend makes: ours, open, of an allowed kind, not destroyed.
func (h *HSM) useKey(ctx context.Context, op string, kh hsm.KeyHandle, allowed func(hsm.KeyKind) bool, fn func(k *keyHandle) error) error {
	op = "soft hsm: " + op
	k, err := h.ownKey(kh)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !allowed(k.kind) {
		return fmt.Errorf("%s: not possible with a %s key: %w", op, kindName(k.kind), hsm.ErrInvalidInput)
	}
	if err := h.live(ctx, op); err != nil {
		return err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.gone {
		return fmt.Errorf("%s: key destroyed: %w", op, hsm.ErrHandleInvalid)
	}
	if err := fn(k); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

const gcmNonceLen = 12

func checkNonce(op string, nonce []byte) error {
	if len(nonce) != gcmNonceLen {
		return fmt.Errorf("soft hsm: %s: nonce of %d bytes, want %d: %w", op, len(nonce), gcmNonceLen, hsm.ErrInvalidInput)
	}
	return nil
}

// EncryptGCM seals with AES-256-GCM under the caller's 12-byte nonce; the
// result is ciphertext||tag.
func (h *HSM) EncryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, plaintext, aad []byte) ([]byte, error) {
	const op = "encrypt aes-gcm"
	if err := checkNonce(op, nonce); err != nil {
		return nil, err
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsAES, func(k *keyHandle) error {
		out = k.aead.Seal(nil, nonce, plaintext, aad)
		return nil
	})
	return out, err
}

// DecryptGCM opens what EncryptGCM sealed; hsm.ErrUnwrap on a bad tag.
func (h *HSM) DecryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	const op = "decrypt aes-gcm"
	if err := checkNonce(op, nonce); err != nil {
		return nil, err
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsAES, func(k *keyHandle) error {
		var err error
		if out, err = k.aead.Open(nil, nonce, sealed, aad); err != nil {
			return hsm.ErrUnwrap
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{} // an empty plaintext is a result, not an absence
	}
	return out, nil
}

// HMAC computes the MAC of msg with the hash of the handle's kind.
func (h *HSM) HMAC(ctx context.Context, kh hsm.KeyHandle, msg []byte) ([]byte, error) {
	var out []byte
	err := h.useKey(ctx, "hmac", kh, hsm.KeyKind.IsHMAC, func(k *keyHandle) error {
		m := hmac.New(k.macHash, k.mac)
		m.Write(msg)
		out = m.Sum(nil)
		return nil
	})
	return out, err
}

// signHashes are the hashes Sign takes, as the PKCS#11 backend does.
var signHashes = map[crypto.Hash]bool{crypto.SHA256: true, crypto.SHA384: true, crypto.SHA512: true}

// Sign signs digest: RSASSA-PSS (salt = hash length) or PKCS#1 v1.5 for
// RSA keys, ECDSA (ASN.1 DER) for EC keys.
func (h *HSM) Sign(ctx context.Context, kh hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error) {
	const op = "sign"
	if !signHashes[hash] {
		return nil, fmt.Errorf("soft hsm: %s: hash %v: %w: signing takes SHA-256, SHA-384 or SHA-512", op, hash, hsm.ErrUnsupported)
	}
	if len(digest) != hash.Size() {
		return nil, fmt.Errorf("soft hsm: %s: %d-byte digest for %v: %w", op, len(digest), hash, hsm.ErrInvalidInput)
	}
	var sig []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.CanSign, func(k *keyHandle) error {
		var err error
		switch {
		case k.ec != nil && pss:
			return fmt.Errorf("PSS asked of an EC key: %w", hsm.ErrInvalidInput)
		case k.ec != nil:
			sig, err = ecdsa.SignASN1(rand.Reader, k.ec, digest)
		case pss:
			sig, err = rsa.SignPSS(rand.Reader, k.rsa, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		default:
			sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, hash, digest)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)
		}
		return nil
	})
	return sig, err
}

// oaepHashes are the hashes DecryptOAEP takes.
var oaepHashes = map[crypto.Hash]func() hash.Hash{
	crypto.SHA1: sha1.New, crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New,
}

// DecryptOAEP decrypts RSAES-OAEP (empty label) with hash for OAEP and
// MGF1. Every failure to decrypt is hsm.ErrUnwrap, with no detail.
func (h *HSM) DecryptOAEP(ctx context.Context, kh hsm.KeyHandle, hash crypto.Hash, ciphertext []byte) ([]byte, error) {
	const op = "decrypt rsa-oaep"
	newHash, ok := oaepHashes[hash]
	if !ok {
		return nil, fmt.Errorf("soft hsm: %s: hash %v: %w: OAEP takes SHA-1, SHA-256, SHA-384 or SHA-512", op, hash, hsm.ErrUnsupported)
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsRSA, func(k *keyHandle) error {
		var err error
		if out, err = rsa.DecryptOAEP(newHash(), nil, k.rsa, ciphertext, nil); err != nil {
			return hsm.ErrUnwrap
		}
		return nil
	})
	return out, err
}
