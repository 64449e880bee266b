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
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/keystore/internal/xaes"
)

// newVersion makes version `version` of a key of this spec: material is
// generated at this node, wrapped under the HSM's current domain key, and
// only the wrapped blob (plus the public key, for asymmetric specs) goes
// into the returned record, and so into the Raft log.
//
// Both protection levels generate here, in process memory, and wrap at
// once: an HSM-level version differs only in where it is used (imported
// into the HSM as a non-extractable object). Generating HSM-level material
// inside the token (C_GenerateKey/C_GenerateKeyPair, then C_WrapKey under
// the DK) is a later step; this function is its seam.
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

	// Public material (slot.public): the version's public key only.
	rsaPub *rsa.PublicKey
	ecPub  *ecdsa.PublicKey

	// Protection level HSM: the version lives inside the HSM behind
	// handle, and ops runs every operation there. onWipe destroys the HSM
	// object (asynchronously: a wipe can run on raft's apply goroutine).
	ops    hsm.KeyOps
	handle hsm.KeyHandle
	onWipe func()
}

// newPublicMaterial parses a version's stored PKIX public key and checks
// it against the spec.
func newPublicMaterial(spec KeySpec, pkix []byte) (*material, error) {
	info := specs[spec]
	if info.family != famRSA && info.family != famECC {
		return nil, fmt.Errorf("key spec %s has no public key", spec)
	}
	pub, err := x509.ParsePKIXPublicKey(pkix)
	if err != nil {
		return nil, fmt.Errorf("parse %s public key: %w", spec, err)
	}
	m := &material{}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if info.family != famRSA || p.N.BitLen() != info.bits {
			return nil, fmt.Errorf("stored public key does not match spec %s", spec)
		}
		m.rsaPub = p
	case *ecdsa.PublicKey:
		if info.family != famECC || p.Curve != info.curve {
			return nil, fmt.Errorf("stored public key does not match spec %s", spec)
		}
		m.ecPub = p
	default:
		return nil, fmt.Errorf("stored public key for %s has type %T", spec, pub)
	}
	m.refs.Store(1)
	return m, nil
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

// wipe destroys an HSM-level version's object, and zeroes what Go lets us
// zero of a SOFTWARE-level one: the HMAC key bytes, the XAES subkey and
// the big.Int words of private keys. It cannot zero AES key schedules,
// crypto/hmac's padded keys, or the private copies crypto/rsa and
// crypto/ecdsa keep inside their FIPS module: those become garbage and are
// reclaimed unzeroed by the collector.
func (m *material) wipe() {
	if m.handle != nil {
		if m.onWipe != nil {
			m.onWipe()
		}
		m.handle, m.ops, m.onWipe = nil, nil, nil
	}
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
