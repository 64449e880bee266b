package transport

import (
	"context"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// The data plane: each call is answered by this node's keystore from its own
// replica.

func (s *service) Encrypt(ctx context.Context, r *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	in, err := encryptIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.Encrypt(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(encryptOut(&c, out), &c)
}

func (s *service) Decrypt(ctx context.Context, r *apiv1.DecryptRequest) (*apiv1.DecryptResponse, error) {
	in, err := decryptIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.Decrypt(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(decryptOut(&c, out), &c)
}

func (s *service) ReEncrypt(ctx context.Context, r *apiv1.ReEncryptRequest) (*apiv1.ReEncryptResponse, error) {
	in, err := reEncryptIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.ReEncrypt(ctx, in)
	if err != nil {
		return nil, err
	}
	return reEncryptOut(out), nil
}

func (s *service) GenerateDataKey(ctx context.Context, r *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return s.generateDataKey(ctx, r, false)
}

func (s *service) GenerateDataKeyWithoutPlaintext(ctx context.Context, r *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return s.generateDataKey(ctx, r, true)
}

func (s *service) generateDataKey(ctx context.Context, r *apiv1.GenerateDataKeyRequest, withoutPlaintext bool) (*apiv1.GenerateDataKeyResponse, error) {
	in, err := generateDataKeyIn(r, withoutPlaintext)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.GenerateDataKey(ctx, in)
	if err != nil {
		return nil, err
	}
	if withoutPlaintext {
		// Belt and braces: the caller asked not to receive the key, so it
		// never leaves this process even if the store returned it.
		out.Plaintext = nil
	}
	return generateDataKeyOut(out), nil
}

func (s *service) GenerateDataKeyPair(ctx context.Context, r *apiv1.GenerateDataKeyPairRequest) (*apiv1.GenerateDataKeyPairResponse, error) {
	return s.generateDataKeyPair(ctx, r, false)
}

func (s *service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, r *apiv1.GenerateDataKeyPairRequest) (*apiv1.GenerateDataKeyPairResponse, error) {
	return s.generateDataKeyPair(ctx, r, true)
}

func (s *service) generateDataKeyPair(ctx context.Context, r *apiv1.GenerateDataKeyPairRequest, withoutPlaintext bool) (*apiv1.GenerateDataKeyPairResponse, error) {
	in, err := generateDataKeyPairIn(r, withoutPlaintext)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.GenerateDataKeyPair(ctx, in)
	if err != nil {
		return nil, err
	}
	if withoutPlaintext {
		out.PrivateKeyPlaintext = nil
	}
	var c conv
	return finish(generateDataKeyPairOut(&c, out), &c)
}

func (s *service) Sign(ctx context.Context, r *apiv1.SignRequest) (*apiv1.SignResponse, error) {
	in, err := signIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.Sign(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(signOut(&c, out), &c)
}

func (s *service) Verify(ctx context.Context, r *apiv1.VerifyRequest) (*apiv1.VerifyResponse, error) {
	in, err := verifyIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.Verify(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(verifyOut(&c, out), &c)
}

func (s *service) GetPublicKey(ctx context.Context, r *apiv1.GetPublicKeyRequest) (*apiv1.GetPublicKeyResponse, error) {
	out, err := s.ks.GetPublicKey(ctx, r.GetKeyId())
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(publicKeyOut(&c, out), &c)
}

func (s *service) GenerateMac(ctx context.Context, r *apiv1.GenerateMacRequest) (*apiv1.GenerateMacResponse, error) {
	in, err := generateMacIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.GenerateMac(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(generateMacOut(&c, out), &c)
}

func (s *service) VerifyMac(ctx context.Context, r *apiv1.VerifyMacRequest) (*apiv1.VerifyMacResponse, error) {
	in, err := verifyMacIn(r)
	if err != nil {
		return nil, err
	}
	out, err := s.ks.VerifyMac(ctx, in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(verifyMacOut(&c, out), &c)
}

func (s *service) GenerateRandom(ctx context.Context, r *apiv1.GenerateRandomRequest) (*apiv1.GenerateRandomResponse, error) {
	b, err := s.ks.GenerateRandom(ctx, intArg(r.GetNumberOfBytes()))
	if err != nil {
		return nil, err
	}
	return &apiv1.GenerateRandomResponse{Plaintext: b}, nil
}
