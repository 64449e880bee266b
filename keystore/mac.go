package keystore

import (
	"context"
	"crypto/hmac"
	"fmt"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// macKey validates a MAC request and resolves its HMAC key.
func (s *Store) macKey(in MacInput) (*fsmpb.Key, error) {
	if err := checkSize("message", len(in.Message), 1, maxMessage); err != nil {
		return nil, err
	}
	if in.MacAlgorithm == "" {
		return nil, validationErr("MAC algorithm is required")
	}
	if _, ok := macAlgs[in.MacAlgorithm]; !ok {
		return nil, validationErr("MAC algorithm %s is not one of HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512", quote(string(in.MacAlgorithm)))
	}
	k, err := s.usable(in.KeyID)
	if err != nil {
		return nil, err
	}
	if err := requireUsage(k, UsageGenerateVerifyMAC, "MAC"); err != nil {
		return nil, err
	}
	spec := keySpec(k)
	if macAlgs[in.MacAlgorithm] != specs[spec].hash {
		return nil, userErr(ErrInvalidKeyUsage, "MAC algorithm %s is not valid for key %s with key spec %s", in.MacAlgorithm, k.GetId(), spec)
	}
	return k, nil
}

// computeMac returns the HMAC of msg under k's current version.
func (s *Store) computeMac(ctx context.Context, k *fsmpb.Key, msg []byte) ([]byte, uint32, error) {
	v := currentVersion(k)
	var mac []byte
	err := s.withMaterial(ctx, k, v, func(m *material) error {
		if m.handle != nil {
			var err error
			if mac, err = m.ops.HMAC(ctx, m.handle, msg); err != nil {
				return hsmErr(fmt.Sprintf("MAC with key %s v%d in the HSM", k.GetId(), v.GetVersion()), err)
			}
			return nil
		}
		h := hmac.New(m.macHash.New, m.mac)
		h.Write(msg)
		mac = h.Sum(nil)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return mac, v.GetVersion(), nil
}

// GenerateMac computes an HMAC with an HMAC key.
func (s *Store) GenerateMac(ctx context.Context, in MacInput) (MacOutput, error) {
	k, err := s.macKey(in)
	if err != nil {
		return MacOutput{}, err
	}
	mac, v, err := s.computeMac(ctx, k, in.Message)
	if err != nil {
		return MacOutput{}, err
	}
	return MacOutput{Mac: mac, KeyID: k.GetId(), KeyVersion: v, MacAlgorithm: in.MacAlgorithm}, nil
}

// errBadMac is what VerifyMac returns for a MAC that does not match.
var errBadMac = &userError{kind: ErrInvalidMac, msg: "the MAC is not valid for this message, key and MAC algorithm"}

// VerifyMac recomputes the HMAC and compares in constant time; a mismatch
// is ErrInvalidMac.
func (s *Store) VerifyMac(ctx context.Context, in MacInput) (MacOutput, error) {
	if err := checkSize("MAC", len(in.Mac), 1, maxMac); err != nil {
		return MacOutput{}, err
	}
	k, err := s.macKey(in)
	if err != nil {
		return MacOutput{}, err
	}
	mac, v, err := s.computeMac(ctx, k, in.Message)
	if err != nil {
		return MacOutput{}, err
	}
	if !hmac.Equal(mac, in.Mac) {
		return MacOutput{}, errBadMac
	}
	return MacOutput{MacValid: true, KeyID: k.GetId(), KeyVersion: v, MacAlgorithm: in.MacAlgorithm}, nil
}

// GenerateRandom returns 1-1024 bytes from this node's HSM.
func (s *Store) GenerateRandom(ctx context.Context, numberOfBytes int) ([]byte, error) {
	if err := checkCount("number of bytes", numberOfBytes, 1, maxRandomBytes); err != nil {
		return nil, err
	}
	b, err := s.hsm.Random(ctx, numberOfBytes)
	if err != nil {
		return nil, hsmErr("generate random", err)
	}
	return b, nil
}

func checkCount(what string, n, min, max int) error {
	if n < min || n > max {
		return validationErr("%s is %d; must be %d-%d", what, n, min, max)
	}
	return nil
}
