package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// oaepMax is the longest plaintext RSAES-OAEP takes for a modulus and hash.
func oaepMax(pub *rsa.PublicKey, h crypto.Hash) int {
	return pub.Size() - 2*h.Size() - 2
}

// sealRSA builds a formatRSA blob: the header, then a standard OAEP
// ciphertext (empty label), so that a client holding the public key can
// build a blob offline by prefixing the header.
func sealRSA(m *material, keyID string, version uint32, alg EncryptionAlgorithm, spec KeySpec, pt []byte) ([]byte, error) {
	h := oaepHash[alg]
	pub := m.rsaPub
	if max := oaepMax(pub, h); len(pt) > max {
		return nil, validationErr("plaintext is %d bytes; %s with %s takes at most %d", len(pt), spec, alg, max)
	}
	out, err := appendHeader(make([]byte, 0, headerSize(formatRSA, keyID)+pub.Size()), formatRSA, keyID, version)
	if err != nil {
		return nil, err
	}
	ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub, pt, nil)
	if err != nil {
		return nil, fmt.Errorf("rsa encrypt: %w: %w", ErrInternal, err)
	}
	return append(out, ct...), nil
}

// decryptRSA decrypts a formatRSA blob's OAEP ciphertext, in Go or in the
// HSM; every failure the bytes can cause is errInvalidCiphertext.
func decryptRSA(ctx context.Context, m *material, alg EncryptionAlgorithm, c ciphertext) ([]byte, error) {
	if m.handle != nil {
		pt, err := m.ops.DecryptOAEP(ctx, m.handle, oaepHash[alg], c.body)
		if err != nil {
			return nil, hsmDecryptErr(fmt.Sprintf("decrypt with key %s v%d in the HSM", c.keyID, c.version), err)
		}
		return pt, nil
	}
	pt, err := rsa.DecryptOAEP(oaepHash[alg].New(), nil, m.rsa, c.body, nil)
	if err != nil {
		return nil, errInvalidCiphertext
	}
	return pt, nil
}

// signingKey resolves a usable SIGN_VERIFY key and checks the algorithm
// and the message; it returns the digest to sign or verify.
func (s *Store) signingKey(ref string, msg []byte, mt MessageType, alg SigningAlgorithm) (*fsmpb.Key, signInfo, []byte, error) {
	info, ok := signAlgs[alg]
	if alg == "" {
		return nil, info, nil, validationErr("signing algorithm is required")
	}
	if !ok {
		return nil, info, nil, validationErr("signing algorithm %s is not a known signing algorithm", quote(string(alg)))
	}
	var digest []byte
	switch mt {
	case "", MessageRaw:
		if err := checkSize("message", len(msg), 1, maxMessage); err != nil {
			return nil, info, nil, err
		}
		h := info.hash.New()
		h.Write(msg)
		digest = h.Sum(nil)
	case MessageDigest:
		if len(msg) != info.hash.Size() {
			return nil, info, nil, validationErr("message is a %d-byte digest; %s needs %d bytes", len(msg), alg, info.hash.Size())
		}
		digest = msg
	default:
		return nil, info, nil, validationErr("message type %s is not RAW or DIGEST", quote(string(mt)))
	}
	k, err := s.usable(ref)
	if err != nil {
		return nil, info, nil, err
	}
	if err := requireUsage(k, UsageSignVerify, "signing"); err != nil {
		return nil, info, nil, err
	}
	if !signAlgAllowed(keySpec(k), alg) {
		return nil, info, nil, userErr(ErrInvalidKeyUsage, "signing algorithm %s is not valid for key %s with key spec %s", alg, k.GetId(), keySpec(k))
	}
	return k, info, digest, nil
}

// Sign signs a message (RAW, hashed here) or a digest (DIGEST) with an
// asymmetric SIGN_VERIFY key: RSASSA-PSS (salt length = hash length),
// RSASSA-PKCS1-v1_5, or ECDSA with an ASN.1 DER signature.
func (s *Store) Sign(ctx context.Context, in SignInput) (SignOutput, error) {
	k, info, digest, err := s.signingKey(in.KeyID, in.Message, in.MessageType, in.SigningAlgorithm)
	if err != nil {
		return SignOutput{}, err
	}
	v := currentVersion(k)
	var sig []byte
	err = s.withMaterial(ctx, k, v, func(m *material) (err error) {
		if sig, err = sign(ctx, m, info, digest); err != nil {
			return fmt.Errorf("sign with key %s v%d: %w", k.GetId(), v.GetVersion(), err)
		}
		return nil
	})
	if err != nil {
		return SignOutput{}, err
	}
	return SignOutput{Signature: sig, KeyID: k.GetId(), KeyVersion: v.GetVersion(), SigningAlgorithm: in.SigningAlgorithm}, nil
}

// sign signs digest in Go or, for an HSM-level version, in the HSM.
func sign(ctx context.Context, m *material, info signInfo, digest []byte) ([]byte, error) {
	if m.handle != nil {
		sig, err := m.ops.Sign(ctx, m.handle, info.hash, info.pss, digest)
		if err != nil {
			return nil, hsmErr("in the HSM", err)
		}
		return sig, nil
	}
	var sig []byte
	var err error
	switch {
	case info.family == famECC:
		sig, err = ecdsa.SignASN1(rand.Reader, m.ec, digest)
	case info.pss:
		sig, err = rsa.SignPSS(rand.Reader, m.rsa, info.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		sig, err = rsa.SignPKCS1v15(rand.Reader, m.rsa, info.hash, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	return sig, nil
}

// errBadSignature is what Verify returns for a signature that does not
// verify.
var errBadSignature = &userError{kind: ErrInvalidSignature, msg: "the signature is not valid for this message, key and signing algorithm"}

// Verify checks a signature made by Sign (or by anyone holding the public
// key). An invalid signature is ErrInvalidSignature.
func (s *Store) Verify(ctx context.Context, in VerifyInput) (VerifyOutput, error) {
	if err := checkSize("signature", len(in.Signature), 1, maxSignature); err != nil {
		return VerifyOutput{}, err
	}
	k, info, digest, err := s.signingKey(in.KeyID, in.Message, in.MessageType, in.SigningAlgorithm)
	if err != nil {
		return VerifyOutput{}, err
	}
	// The public key suffices, at either protection level: Verify needs
	// neither the domain key nor the HSM.
	v := currentVersion(k)
	m, err := s.publicMaterial(ctx, k, v)
	if err != nil {
		return VerifyOutput{}, err
	}
	defer m.release()
	valid := false
	switch {
	case info.family == famECC:
		valid = ecdsa.VerifyASN1(m.ecPub, digest, in.Signature)
	case info.pss:
		valid = rsa.VerifyPSS(m.rsaPub, info.hash, digest, in.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	default:
		valid = rsa.VerifyPKCS1v15(m.rsaPub, info.hash, digest, in.Signature) == nil
	}
	if !valid {
		return VerifyOutput{}, errBadSignature
	}
	return VerifyOutput{SignatureValid: true, KeyID: k.GetId(), SigningAlgorithm: in.SigningAlgorithm}, nil
}

// GetPublicKey returns an asymmetric key's PKIX public key. It needs no
// unwrap: the public key is replicated in the clear.
func (s *Store) GetPublicKey(ctx context.Context, keyID string) (PublicKeyOutput, error) {
	k, err := s.usable(keyID)
	if err != nil {
		return PublicKeyOutput{}, err
	}
	spec, usage := keySpec(k), keyUsage(k)
	if f := specs[spec].family; f != famRSA && f != famECC {
		return PublicKeyOutput{}, userErr(ErrUnsupported, "key %s has key spec %s; only asymmetric keys have a public key", k.GetId(), spec)
	}
	v := currentVersion(k)
	if v == nil || len(v.GetPublicKey()) == 0 {
		return PublicKeyOutput{}, fmt.Errorf("public key of %s: %w: %w", k.GetId(), ErrInternal, errors.New("no public key recorded"))
	}
	return PublicKeyOutput{
		KeyID:                k.GetId(),
		PublicKey:            append([]byte(nil), v.GetPublicKey()...),
		KeySpec:              spec,
		KeyUsage:             usage,
		KeyVersion:           v.GetVersion(),
		EncryptionAlgorithms: encryptionAlgorithms(spec, usage),
		SigningAlgorithms:    signingAlgorithms(spec, usage),
	}, nil
}
