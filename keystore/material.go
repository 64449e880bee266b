package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/keystore/internal/xaes"
)

// newVersion makes version `version` of a key of this spec: material is
// generated at this node, wrapped under the HSM's current domain key, and
// only the wrapped blob (plus the public key, for asymmetric specs) goes
// into the returned record, and so into the Raft log.
//
// This is the protection-level seam: SOFTWARE keys are generated here in
// process memory; an HSM-level key will instead be generated inside the
// token (by the PKCS#11 backend) and come back already wrapped.
func (s *Store) newVersion(ctx context.Context, spec KeySpec, version uint32, onDemand bool, now time.Time) (*fsmpb.KeyVersion, error) {
	material, public, err := s.generateMaterial(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	dkv, err := s.hsm.CurrentDomainKeyVersion(ctx)
	if err != nil {
		return nil, hsmErr("domain key version", err)
	}
	wrapped, err := s.hsm.Wrap(ctx, dkv, material)
	if err != nil {
		return nil, hsmErr(fmt.Sprintf("wrap new %s material under domain key v%d", spec, dkv), err)
	}
	return &fsmpb.KeyVersion{
		Version:          version,
		WrappedMaterial:  wrapped,
		DomainKeyVersion: dkv,
		CreatedUnixNano:  now.UnixNano(),
		OnDemand:         onDemand,
		PublicKey:        public,
	}, nil
}

// generateMaterial returns fresh key material (symmetric and HMAC: raw
// bytes from the HSM; RSA and ECC: the PKCS#8 private key) and, for
// asymmetric specs, the PKIX public key.
func (s *Store) generateMaterial(ctx context.Context, spec KeySpec) (material, public []byte, err error) {
	info := specs[spec]
	var priv crypto.Signer
	switch info.family {
	case famSymmetric, famHMAC:
		b, err := s.hsm.Random(ctx, info.size)
		if err != nil {
			return nil, nil, hsmErr("random key material", err)
		}
		return b, nil, nil
	case famRSA:
		priv, err = rsa.GenerateKey(rand.Reader, info.bits)
	case famECC:
		priv, err = ecdsa.GenerateKey(info.curve, rand.Reader)
	default:
		return nil, nil, fmt.Errorf("generate %s: %w: unknown key spec", spec, ErrInternal)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key pair: %w: %w", spec, ErrInternal, err)
	}
	defer wipePrivate(priv)
	return marshalPair(spec, priv)
}

// wipePrivate zeroes the big-integer words of a generated private key once
// it has been marshalled (see material.wipe for what stays unzeroed).
func wipePrivate(priv crypto.Signer) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		(&material{rsa: k}).wipe()
	case *ecdsa.PrivateKey:
		(&material{ec: k}).wipe()
	}
}

func marshalPair(spec KeySpec, priv crypto.Signer) (der, pub []byte, err error) {
	der, err = x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal %s private key: %w: %w", spec, ErrInternal, err)
	}
	pub, err = x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		clear(der)
		return nil, nil, fmt.Errorf("marshal %s public key: %w: %w", spec, ErrInternal, err)
	}
	return der, pub, nil
}

// material is one unwrapped key version, ready to use. It is shared by the
// cache and the operations using it; refs counts them, and the last release
// wipes it, so an eviction never zeroes bytes an operation is reading.
type material struct {
	refs atomic.Int32

	sym     *xaes.Cached // SYMMETRIC_DEFAULT
	mac     []byte       // HMAC key
	macHash crypto.Hash
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
}

// newMaterial builds the ready-to-use form of raw (unwrapped) material and
// wipes raw, except for HMAC keys, whose bytes the material keeps (and
// wipes on release).
func newMaterial(spec KeySpec, raw []byte) (*material, error) {
	info := specs[spec]
	m := &material{}
	switch info.family {
	case famSymmetric:
		defer clear(raw)
		c, err := xaes.NewCached(raw)
		if err != nil {
			return nil, err
		}
		m.sym = c
	case famHMAC:
		if len(raw) != info.size {
			clear(raw)
			return nil, fmt.Errorf("%s material is %d bytes, want %d", spec, len(raw), info.size)
		}
		m.mac, m.macHash = raw, info.hash
	case famRSA, famECC:
		defer clear(raw)
		k, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("parse %s private key: %w", spec, err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			if info.family != famRSA || k.N.BitLen() != info.bits {
				return nil, fmt.Errorf("stored private key does not match spec %s", spec)
			}
			m.rsa = k
		case *ecdsa.PrivateKey:
			if info.family != famECC || k.Curve != info.curve {
				return nil, fmt.Errorf("stored private key does not match spec %s", spec)
			}
			m.ec = k
		default:
			return nil, fmt.Errorf("stored private key for %s has type %T", spec, k)
		}
	default:
		clear(raw)
		return nil, fmt.Errorf("unknown key spec %q", spec)
	}
	m.refs.Store(1)
	return m, nil
}

func (m *material) acquire() { m.refs.Add(1) }

// release drops one reference; the last one wipes the material.
func (m *material) release() {
	if m.refs.Add(-1) == 0 {
		m.wipe()
	}
}

// wipe zeroes what Go lets us zero: the HMAC key bytes, the XAES subkey and
// the big.Int words of private keys. It cannot zero AES key schedules,
// crypto/hmac's padded keys, or the private copies crypto/rsa and
// crypto/ecdsa keep inside their FIPS module: those become garbage and are
// reclaimed unzeroed by the collector.
func (m *material) wipe() {
	clear(m.mac)
	m.mac = nil
	if m.sym != nil {
		m.sym.Wipe()
		m.sym = nil
	}
	if m.rsa != nil {
		clear(m.rsa.D.Bits())
		for _, p := range m.rsa.Primes {
			clear(p.Bits())
		}
		for _, p := range []*big.Int{m.rsa.Precomputed.Dp, m.rsa.Precomputed.Dq, m.rsa.Precomputed.Qinv} {
			if p != nil {
				clear(p.Bits())
			}
		}
		m.rsa = nil
	}
	if m.ec != nil {
		clear(m.ec.D.Bits())
		m.ec = nil
	}
}
