package keystore

import (
	"context"

	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/keystore/internal/xaes"
)

// Encrypt encrypts 1-4096 bytes under the key's current version:
// XAES-256-GCM for SYMMETRIC_DEFAULT keys, RSAES-OAEP for RSA keys.
func (s *Store) Encrypt(ctx context.Context, in EncryptInput) (EncryptOutput, error) {
	if err := checkSize("plaintext", len(in.Plaintext), 1, maxPlaintext); err != nil {
		return EncryptOutput{}, err
	}
	ctxEnc, err := encodeContext(nil, in.EncryptionContext)
	if err != nil {
		return EncryptOutput{}, err
	}
	k, alg, err := s.encryptionKey(in.KeyID, in.EncryptionAlgorithm)
	if err != nil {
		return EncryptOutput{}, err
	}
	blob, v, err := s.encryptWith(ctx, k, alg, in.Plaintext, ctxEnc, len(in.EncryptionContext) > 0)
	if err != nil {
		return EncryptOutput{}, err
	}
	return EncryptOutput{CiphertextBlob: blob, KeyID: k.GetId(), KeyVersion: v, EncryptionAlgorithm: alg}, nil
}

// Decrypt decrypts a blob made by Encrypt (or a data-key operation) under
// any version of its key. The key comes from the blob; a given KeyID must
// name that key.
func (s *Store) Decrypt(ctx context.Context, in DecryptInput) (DecryptOutput, error) {
	if err := checkSize("ciphertext blob", len(in.CiphertextBlob), 1, maxCiphertext); err != nil {
		return DecryptOutput{}, err
	}
	ctxEnc, err := encodeContext(nil, in.EncryptionContext)
	if err != nil {
		return DecryptOutput{}, err
	}
	if err := checkEncAlgName(in.EncryptionAlgorithm); err != nil {
		return DecryptOutput{}, err
	}
	var want *fsmpb.Key
	if in.KeyID != "" {
		if want, err = s.resolve(in.KeyID); err != nil {
			return DecryptOutput{}, err
		}
	}
	pt, k, v, alg, err := s.open(ctx, in.CiphertextBlob, ctxEnc, len(in.EncryptionContext) > 0, in.EncryptionAlgorithm, want)
	if err != nil {
		return DecryptOutput{}, err
	}
	return DecryptOutput{Plaintext: pt, KeyID: k.GetId(), KeyVersion: v, EncryptionAlgorithm: alg}, nil
}

// ReEncrypt decrypts a blob and encrypts its plaintext under the
// destination key, without the plaintext leaving this node.
func (s *Store) ReEncrypt(ctx context.Context, in ReEncryptInput) (ReEncryptOutput, error) {
	if err := checkSize("ciphertext blob", len(in.CiphertextBlob), 1, maxCiphertext); err != nil {
		return ReEncryptOutput{}, err
	}
	srcCtx, err := encodeContext(nil, in.SourceEncryptionContext)
	if err != nil {
		return ReEncryptOutput{}, err
	}
	dstCtx, err := encodeContext(nil, in.DestinationEncryptionContext)
	if err != nil {
		return ReEncryptOutput{}, err
	}
	if err := checkEncAlgName(in.SourceEncryptionAlgorithm); err != nil {
		return ReEncryptOutput{}, err
	}
	if in.DestinationKeyID == "" {
		return ReEncryptOutput{}, validationErr("destination key id is required")
	}
	dst, dstAlg, err := s.encryptionKey(in.DestinationKeyID, in.DestinationEncryptionAlgorithm)
	if err != nil {
		return ReEncryptOutput{}, err
	}
	var want *fsmpb.Key
	if in.SourceKeyID != "" {
		if want, err = s.resolve(in.SourceKeyID); err != nil {
			return ReEncryptOutput{}, err
		}
	}
	pt, src, srcV, _, err := s.open(ctx, in.CiphertextBlob, srcCtx, len(in.SourceEncryptionContext) > 0, in.SourceEncryptionAlgorithm, want)
	if err != nil {
		return ReEncryptOutput{}, err
	}
	defer clear(pt)
	blob, v, err := s.encryptWith(ctx, dst, dstAlg, pt, dstCtx, len(in.DestinationEncryptionContext) > 0)
	if err != nil {
		return ReEncryptOutput{}, err
	}
	return ReEncryptOutput{
		CiphertextBlob: blob, SourceKeyID: src.GetId(), SourceKeyVersion: srcV,
		KeyID: dst.GetId(), KeyVersion: v,
	}, nil
}

// checkEncAlgName refuses an encryption algorithm name that is not one.
func checkEncAlgName(alg EncryptionAlgorithm) error {
	switch alg {
	case "", EncSymmetricDefault, EncRSAOAEPSHA1, EncRSAOAEPSHA256:
		return nil
	}
	return validationErr("encryption algorithm %s is not one of SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256", quote(string(alg)))
}

// encryptionKey resolves a usable ENCRYPT_DECRYPT key and the algorithm to
// use with it.
func (s *Store) encryptionKey(ref string, alg EncryptionAlgorithm) (*fsmpb.Key, EncryptionAlgorithm, error) {
	if err := checkEncAlgName(alg); err != nil {
		return nil, "", err
	}
	k, err := s.usable(ref)
	if err != nil {
		return nil, "", err
	}
	if err := requireUsage(k, UsageEncryptDecrypt, "encryption"); err != nil {
		return nil, "", err
	}
	alg, err = encAlgFor(k, alg)
	return k, alg, err
}

// encAlgFor checks alg against the key's spec and fills the default.
func encAlgFor(k *fsmpb.Key, alg EncryptionAlgorithm) (EncryptionAlgorithm, error) {
	spec := keySpec(k)
	switch specs[spec].family {
	case famSymmetric:
		if alg == "" || alg == EncSymmetricDefault {
			return EncSymmetricDefault, nil
		}
	case famRSA:
		if alg == "" {
			return "", validationErr("encryption algorithm is required with RSA key %s: RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256", k.GetId())
		}
		if alg == EncRSAOAEPSHA1 || alg == EncRSAOAEPSHA256 {
			return alg, nil
		}
	}
	return "", userErr(ErrInvalidKeyUsage, "encryption algorithm %s is not valid for key %s with key spec %s", alg, k.GetId(), spec)
}

// encryptWith encrypts under k's current version with a checked algorithm.
func (s *Store) encryptWith(ctx context.Context, k *fsmpb.Key, alg EncryptionAlgorithm, pt, ctxEnc []byte, hasCtx bool) ([]byte, uint32, error) {
	v := currentVersion(k)
	if alg != EncSymmetricDefault {
		if hasCtx {
			return nil, 0, errContextNotSymmetric(k)
		}
		// RSA encryption needs only the public key, at either level.
		m, err := s.publicMaterial(ctx, k, v)
		if err != nil {
			return nil, 0, err
		}
		defer m.release()
		blob, err := sealRSA(m, k.GetId(), v.GetVersion(), alg, keySpec(k), pt)
		return blob, v.GetVersion(), err
	}
	var blob []byte
	err := s.withMaterial(ctx, k, v, func(m *material) (err error) {
		if m.handle != nil {
			blob, err = s.sealHSM(ctx, m, k.GetId(), v.GetVersion(), pt, ctxEnc)
		} else {
			blob, err = sealSymmetric(m, k.GetId(), v.GetVersion(), pt, ctxEnc)
		}
		return err
	})
	return blob, v.GetVersion(), err
}

// errContextNotSymmetric refuses an encryption context with an RSA key:
// OAEP has no associated data to bind it to.
func errContextNotSymmetric(k *fsmpb.Key) error {
	return validationErr("encryption context is supported only with symmetric keys; key %s is %s", k.GetId(), keySpec(k))
}

// blobFormat is the ciphertext format a key's blobs have (0: none).
func blobFormat(k *fsmpb.Key) byte {
	switch specs[keySpec(k)].family {
	case famSymmetric:
		if hsmLevel(k) {
			return formatHSMSymmetric
		}
		return formatSymmetric
	case famRSA:
		// Both levels: OAEP is encrypted in Go with the public key.
		return formatRSA
	}
	return 0
}

// sealSymmetric builds a formatSymmetric blob in one allocation (plus one
// for the AAD when there is an encryption context).
func sealSymmetric(m *material, keyID string, version uint32, pt, ctxEnc []byte) ([]byte, error) {
	hdr := headerSize(formatSymmetric, keyID)
	out, err := appendHeader(make([]byte, 0, hdr+len(pt)+xaes.Overhead), formatSymmetric, keyID, version)
	if err != nil {
		return nil, err
	}
	out = out[:hdr]
	nonce := out[hdr-xaes.NonceSize : hdr]
	m.sym.NewNonce(nonce)
	aad := out[:hdr]
	if len(ctxEnc) > 0 {
		aad = append(append(make([]byte, 0, hdr+len(ctxEnc)), out[:hdr]...), ctxEnc...)
	}
	return m.sym.Seal(out, nonce, pt, aad), nil
}

// open decrypts a blob. Every failure an outsider can cause by choosing the
// bytes gives errInvalidCiphertext, except a key that is disabled or
// pending deletion (its state is not secret) and a KeyID that names
// another key.
func (s *Store) open(ctx context.Context, blob, ctxEnc []byte, hasCtx bool, alg EncryptionAlgorithm, want *fsmpb.Key) (pt []byte, k *fsmpb.Key, version uint32, used EncryptionAlgorithm, err error) {
	c, ok := parseCiphertext(blob)
	if !ok {
		return nil, nil, 0, "", errInvalidCiphertext
	}
	if want != nil && string(c.keyID) != want.GetId() {
		return nil, nil, 0, "", userErr(ErrIncorrectKey, "the ciphertext was not made under key %s", want.GetId())
	}
	k, ok = s.state.KeyBytes(c.keyID)
	if !ok {
		return nil, nil, 0, "", errInvalidCiphertext
	}
	if err := s.checkServable(k); err != nil {
		return nil, nil, 0, "", err
	}
	fam := specs[keySpec(k)].family
	if keyUsage(k) != UsageEncryptDecrypt || c.format != blobFormat(k) {
		return nil, nil, 0, "", errInvalidCiphertext
	}
	if used, err = encAlgFor(k, alg); err != nil {
		return nil, nil, 0, "", err
	}
	if fam == famRSA && hasCtx {
		return nil, nil, 0, "", errContextNotSymmetric(k)
	}
	v := findVersion(k, c.version)
	if v == nil {
		return nil, nil, 0, "", errInvalidCiphertext
	}
	err = s.withMaterial(ctx, k, v, func(m *material) (err error) {
		switch {
		case fam == famRSA:
			pt, err = decryptRSA(ctx, m, used, c)
		case m.handle != nil:
			pt, err = openHSM(ctx, m, c, ctxEnc)
		default:
			aad := c.header
			if len(ctxEnc) > 0 {
				aad = append(append(make([]byte, 0, len(c.header)+len(ctxEnc)), c.header...), ctxEnc...)
			}
			if pt, err = m.sym.Open(nil, c.nonce, c.body, aad); err != nil {
				err = errInvalidCiphertext
			}
		}
		return err
	})
	if err != nil {
		return nil, nil, 0, "", err
	}
	return pt, k, c.version, used, nil
}
