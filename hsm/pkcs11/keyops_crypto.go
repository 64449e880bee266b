package pkcs11

import (
	"context"
	"crypto"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

const (
	gcmNonceLen = 12
	gcmTagLen   = 16
)

// gcm is CKM_AES_GCM with the caller's nonce and a 128-bit tag. The
// params hold C memory until free runs.
func gcm(nonce, aad []byte) (m []*pkcs11.Mechanism, free func()) {
	p := pkcs11.NewGCMParams(nonce, aad, gcmTagLen*8)
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, p.Free
}

// checkNonce refuses anything but a 12-byte nonce. SoftHSM takes an empty
// IV without complaint (and some HSMs would pick their own), so Meridian
// always brings its own and a missing one is a caller bug.
func checkNonce(op string, nonce []byte) error {
	if len(nonce) != gcmNonceLen {
		return fmt.Errorf("pkcs11: %s: nonce of %d bytes, want %d: %w", op, len(nonce), gcmNonceLen, hsm.ErrInvalidInput)
	}
	return nil
}

// EncryptGCM seals plaintext with AES-256-GCM inside the token under the
// caller's 12-byte nonce; the result is ciphertext||tag.
func (h *HSM) EncryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, plaintext, aad []byte) ([]byte, error) {
	const op = "encrypt aes-gcm"
	if err := checkNonce(op, nonce); err != nil {
		return nil, err
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsAES, pkcs11.CKM_AES_GCM, func(s pkcs11.SessionHandle, k *keyHandle) error {
		m, free := gcm(nonce, aad)
		defer free()
		if err := h.p.EncryptInit(s, m, k.obj); err != nil {
			return keyErr("C_EncryptInit", err)
		}
		var err error
		out, err = h.p.Encrypt(s, plaintext)
		return keyErr("C_Encrypt", err)
	})
	if err != nil {
		return nil, err
	}
	if len(out) != len(plaintext)+gcmTagLen {
		return nil, fmt.Errorf("pkcs11: %s: token returned %d bytes for %d: %w", op, len(out), len(plaintext), hsm.ErrUnavailable)
	}
	return out, nil
}

// DecryptGCM opens what EncryptGCM sealed; hsm.ErrUnwrap when the tag
// does not verify (or sealed is too short to hold one).
func (h *HSM) DecryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	const op = "decrypt aes-gcm"
	if err := checkNonce(op, nonce); err != nil {
		return nil, err
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsAES, pkcs11.CKM_AES_GCM, func(s pkcs11.SessionHandle, k *keyHandle) error {
		if len(sealed) < gcmTagLen {
			return hsm.ErrUnwrap
		}
		m, free := gcm(nonce, aad)
		defer free()
		if err := h.p.DecryptInit(s, m, k.obj); err != nil {
			return keyErr("C_DecryptInit", err)
		}
		var err error
		out, err = h.p.Decrypt(s, sealed)
		return inputErr("C_Decrypt", err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// hmacMechs maps an HMAC kind to its mechanism.
var hmacMechs = map[hsm.KeyKind]uint{
	hsm.KindHMACSHA256: pkcs11.CKM_SHA256_HMAC,
	hsm.KindHMACSHA384: pkcs11.CKM_SHA384_HMAC,
	hsm.KindHMACSHA512: pkcs11.CKM_SHA512_HMAC,
}

// HMAC computes the MAC of msg inside the token with the hash of the
// handle's kind.
func (h *HSM) HMAC(ctx context.Context, kh hsm.KeyHandle, msg []byte) ([]byte, error) {
	mech := uint(pkcs11.CKM_SHA256_HMAC)
	if k, ok := kh.(*keyHandle); ok && k != nil && hmacMechs[k.kind] != 0 {
		mech = hmacMechs[k.kind]
	}
	var out []byte
	err := h.useKey(ctx, "hmac", kh, hsm.KeyKind.IsHMAC, mech, func(s pkcs11.SessionHandle, k *keyHandle) error {
		if err := h.p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, k.obj); err != nil {
			return keyErr("C_SignInit", err)
		}
		var err error
		out, err = h.p.Sign(s, msg)
		return keyErr("C_Sign", err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// hashMech is a hash as PKCS#11 names it for PSS and OAEP parameters, and
// its PKCS#1 v1.5 DigestInfo prefix (RFC 8017 section 9.2, note 1).
type hashMech struct {
	name   string
	mech   uint
	mgf    uint
	prefix []byte
}

var hashMechs = map[crypto.Hash]hashMech{
	crypto.SHA1: {"SHA-1", pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, nil},
	crypto.SHA256: {"SHA-256", pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256,
		[]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}},
	crypto.SHA384: {"SHA-384", pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384,
		[]byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}},
	crypto.SHA512: {"SHA-512", pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512,
		[]byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}},
}

// signMech picks the mechanism and the data to sign for a handle; it is
// called before the handle is trusted, so it only inspects its kind.
func signMech(kh hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) (*pkcs11.Mechanism, []byte, error) {
	hm, ok := hashMechs[hash]
	if !ok || hash == crypto.SHA1 {
		return nil, nil, fmt.Errorf("hash %v: %w: signing takes SHA-256, SHA-384 or SHA-512", hash, hsm.ErrUnsupported)
	}
	if len(digest) != hash.Size() {
		return nil, nil, fmt.Errorf("%d-byte digest for %s: %w", len(digest), hm.name, hsm.ErrInvalidInput)
	}
	k, _ := kh.(*keyHandle)
	switch {
	case k == nil:
		return pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), digest, nil // useKey refuses the handle
	case k.kind == hsm.KindECDSAPrivate && pss:
		return nil, nil, fmt.Errorf("PSS asked of an EC key: %w", hsm.ErrInvalidInput)
	case k.kind == hsm.KindECDSAPrivate:
		return pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), digest, nil
	case pss:
		return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hm.mech, hm.mgf, uint(hash.Size()))), digest, nil
	default:
		return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), append(append([]byte{}, hm.prefix...), digest...), nil
	}
}

// Sign signs digest inside the token: RSASSA-PSS (salt = hash length) or
// PKCS#1 v1.5 for RSA keys, ECDSA (ASN.1 DER) for EC keys.
func (h *HSM) Sign(ctx context.Context, kh hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error) {
	const op = "sign"
	m, data, err := signMech(kh, hash, pss, digest)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	var sig []byte
	err = h.useKey(ctx, op, kh, hsm.KeyKind.CanSign, m.Mechanism, func(s pkcs11.SessionHandle, k *keyHandle) error {
		if err := h.p.SignInit(s, []*pkcs11.Mechanism{m}, k.obj); err != nil {
			return keyErr("C_SignInit", err)
		}
		var err error
		sig, err = h.p.Sign(s, data)
		return keyErr("C_Sign", err)
	})
	if err != nil {
		return nil, err
	}
	if m.Mechanism != pkcs11.CKM_ECDSA {
		return sig, nil
	}
	der, err := ecdsaDER(sig)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %s: %w: %w", op, hsm.ErrUnavailable, err)
	}
	return der, nil
}

// ecdsaDER turns PKCS#11's ECDSA signature, r||s of equal lengths, into
// the ASN.1 DER SEQUENCE { r INTEGER, s INTEGER } that Go and X.509 use.
func ecdsaDER(rs []byte) ([]byte, error) {
	if len(rs) == 0 || len(rs)%2 != 0 {
		return nil, fmt.Errorf("ECDSA signature of %d bytes is not r||s", len(rs))
	}
	n := len(rs) / 2
	r, s := new(big.Int).SetBytes(rs[:n]), new(big.Int).SetBytes(rs[n:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, fmt.Errorf("ECDSA signature with a zero component")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// DecryptOAEP decrypts RSAES-OAEP (empty label) inside the token, with
// hash for both OAEP and MGF1. Every failure to decrypt is hsm.ErrUnwrap,
// with no detail. A token that refuses the hash gives hsm.ErrUnsupported:
// SoftHSM 2.6 implements OAEP with SHA-1 only.
func (h *HSM) DecryptOAEP(ctx context.Context, kh hsm.KeyHandle, hash crypto.Hash, ciphertext []byte) ([]byte, error) {
	const op = "decrypt rsa-oaep"
	hm, ok := hashMechs[hash]
	if !ok {
		return nil, fmt.Errorf("pkcs11: %s: hash %v: %w: OAEP takes SHA-1, SHA-256, SHA-384 or SHA-512", op, hash, hsm.ErrUnsupported)
	}
	var out []byte
	err := h.useKey(ctx, op, kh, hsm.KeyKind.IsRSA, pkcs11.CKM_RSA_PKCS_OAEP, func(s pkcs11.SessionHandle, k *keyHandle) error {
		if len(ciphertext) != k.modLen {
			return hsm.ErrUnwrap
		}
		p := pkcs11.NewOAEPParams(hm.mech, hm.mgf, pkcs11.CKZ_DATA_SPECIFIED, nil)
		err := h.p.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, p)}, k.obj)
		switch {
		case hash != crypto.SHA1 && (isCode(err, pkcs11.CKR_ARGUMENTS_BAD) || isCode(err, pkcs11.CKR_MECHANISM_PARAM_INVALID)):
			return fmt.Errorf("%w: token %q refuses RSA-OAEP with %s (%v); SoftHSM 2.6 implements OAEP with SHA-1 only", hsm.ErrUnsupported, h.cfg.TokenLabel, hm.name, err)
		case err != nil:
			return keyErr("C_DecryptInit", err)
		}
		out, err = h.p.Decrypt(s, ciphertext)
		return inputErr("C_Decrypt", err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
