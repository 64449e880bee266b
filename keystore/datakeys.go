package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// dataKeyPairSpecs maps a pair spec to the key spec that describes it.
var dataKeyPairSpecs = map[DataKeyPairSpec]KeySpec{
	PairRSA2048: SpecRSA2048, PairRSA3072: SpecRSA3072, PairRSA4096: SpecRSA4096,
	PairECCP256: SpecECCP256, PairECCP384: SpecECCP384, PairECCP521: SpecECCP521,
}

// dataKeyEncryptionKey resolves the symmetric key that encrypts data keys.
func (s *Store) dataKeyEncryptionKey(ref string) (*fsmpb.Key, error) {
	k, err := s.usable(ref)
	if err != nil {
		return nil, err
	}
	if err := requireUsage(k, UsageEncryptDecrypt, "data key generation"); err != nil {
		return nil, err
	}
	if spec := keySpec(k); spec != SpecSymmetricDefault {
		return nil, userErr(ErrInvalidKeyUsage, "key %s has key spec %s; data keys need a SYMMETRIC_DEFAULT key", k.GetId(), spec)
	}
	return k, nil
}

// GenerateDataKey returns a fresh data key from the HSM, encrypted under the
// key (same format as Encrypt) and, unless WithoutPlaintext, in the clear.
func (s *Store) GenerateDataKey(ctx context.Context, in GenerateDataKeyInput) (GenerateDataKeyOutput, error) {
	var n int
	switch {
	case in.KeySpec != "" && in.NumberOfBytes != 0:
		return GenerateDataKeyOutput{}, validationErr("give either key spec or number of bytes, not both")
	case in.KeySpec == DataKeyAES128:
		n = 16
	case in.KeySpec == DataKeyAES256:
		n = 32
	case in.KeySpec != "":
		return GenerateDataKeyOutput{}, validationErr("data key spec %s is not AES_128 or AES_256", quote(string(in.KeySpec)))
	case in.NumberOfBytes == 0:
		return GenerateDataKeyOutput{}, validationErr("give a key spec (AES_128 or AES_256) or a number of bytes (1-%d)", maxDataKeyBytes)
	default:
		if err := checkCount("number of bytes", in.NumberOfBytes, 1, maxDataKeyBytes); err != nil {
			return GenerateDataKeyOutput{}, err
		}
		n = in.NumberOfBytes
	}
	ctxEnc, err := encodeContext(nil, in.EncryptionContext)
	if err != nil {
		return GenerateDataKeyOutput{}, err
	}
	k, err := s.dataKeyEncryptionKey(in.KeyID)
	if err != nil {
		return GenerateDataKeyOutput{}, err
	}
	pt, err := s.hsm.Random(ctx, n)
	if err != nil {
		return GenerateDataKeyOutput{}, hsmErr("generate data key", err)
	}
	blob, v, err := s.encryptWith(ctx, k, EncSymmetricDefault, pt, ctxEnc, len(ctxEnc) > 0)
	if err != nil {
		clear(pt)
		return GenerateDataKeyOutput{}, err
	}
	out := GenerateDataKeyOutput{CiphertextBlob: blob, Plaintext: pt, KeyID: k.GetId(), KeyVersion: v}
	if in.WithoutPlaintext {
		clear(pt)
		out.Plaintext = nil
	}
	return out, nil
}

// GenerateDataKeyPair returns a fresh key pair: the PKIX public key, the
// PKCS#8 private key encrypted under the key, and (unless WithoutPlaintext)
// the private key in the clear.
func (s *Store) GenerateDataKeyPair(ctx context.Context, in GenerateDataKeyPairInput) (GenerateDataKeyPairOutput, error) {
	spec, ok := dataKeyPairSpecs[in.KeyPairSpec]
	if !ok {
		return GenerateDataKeyPairOutput{}, validationErr("key pair spec %s is not one of RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521", quote(string(in.KeyPairSpec)))
	}
	ctxEnc, err := encodeContext(nil, in.EncryptionContext)
	if err != nil {
		return GenerateDataKeyPairOutput{}, err
	}
	k, err := s.dataKeyEncryptionKey(in.KeyID)
	if err != nil {
		return GenerateDataKeyPairOutput{}, err
	}
	info := specs[spec]
	var priv crypto.Signer
	if info.family == famRSA {
		priv, err = rsa.GenerateKey(rand.Reader, info.bits)
	} else {
		priv, err = ecdsa.GenerateKey(info.curve, rand.Reader)
	}
	if err != nil {
		return GenerateDataKeyPairOutput{}, fmt.Errorf("generate %s data key pair: %w: %w", spec, ErrInternal, err)
	}
	der, pub, err := marshalPair(spec, priv)
	wipePrivate(priv)
	if err != nil {
		return GenerateDataKeyPairOutput{}, err
	}
	blob, v, err := s.encryptWith(ctx, k, EncSymmetricDefault, der, ctxEnc, len(ctxEnc) > 0)
	if err != nil {
		clear(der)
		return GenerateDataKeyPairOutput{}, err
	}
	out := GenerateDataKeyPairOutput{
		PrivateKeyCiphertextBlob: blob, PrivateKeyPlaintext: der, PublicKey: pub,
		KeyID: k.GetId(), KeyVersion: v, KeyPairSpec: in.KeyPairSpec,
	}
	if in.WithoutPlaintext {
		clear(der)
		out.PrivateKeyPlaintext = nil
	}
	return out, nil
}
