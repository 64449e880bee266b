// Package hsm defines what Meridian needs from a hardware security module and
// holds its backends: soft (pure Go, the embedded default) and pkcs11. The
// domain key (DK) never leaves an HSM in the clear; everything else Meridian
// keeps is wrapped under it.
//
// What a backend can do beyond the core calls is named, not discovered: HSM
// has one accessor per capability (KeyOps, Enroller, DomainKeyRotator,
// Token), each returning the capability and whether the HSM has it. A
// decorator (metrics, fault injection: see Intercept) forwards every
// accessor by wrapping what the HSM it wraps returns, so it never claims a
// capability the backend lacks and no call through a capability bypasses
// it. Callers never type-assert an HSM for a capability.
package hsm

import (
	"context"
	"crypto"
	"errors"
)

// Sentinel errors. Backends wrap them with context; callers test with
// errors.Is. Messages never contain key material, PINs or passphrases.
var (
	// ErrNoDomainKey: this HSM does not hold the DK (or the asked version):
	// the node has not been initialised or enrolled yet.
	ErrNoDomainKey = errors.New("hsm: domain key not present")
	// ErrUnwrap: a wrapped blob failed its integrity check under the DK.
	ErrUnwrap = errors.New("hsm: unwrap failed integrity check")
	// ErrUnavailable: the device, token or session failed; the call may
	// succeed later (the node is unhealthy for crypto meanwhile).
	ErrUnavailable = errors.New("hsm: unavailable")
	// ErrBadPassphrase: the sealed DK file did not open with the passphrase.
	ErrBadPassphrase = errors.New("hsm: wrong passphrase or corrupted sealed key file")
	// ErrClosed: the HSM was closed.
	ErrClosed = errors.New("hsm: closed")
	// ErrUnsupported: the backend cannot do this operation or key type.
	ErrUnsupported = errors.New("hsm: unsupported")
	// ErrInvalidInput: the caller passed something no backend accepts
	// (empty material to Wrap, a negative length to Random). A caller bug,
	// not a device failure: it says nothing about the HSM's health.
	ErrInvalidInput = errors.New("hsm: invalid input")
)

// HSM is one node's security module. Every call takes a context because a
// real token's session pool can be exhausted and devices can hang; an
// implementation returns ctx.Err() (wrapped) when the context ends first.
// Implementations are safe for concurrent use. Every backend passes the
// shared contract suite, hsmtest.RunContract; DESIGN.md states the contract.
type HSM interface {
	// DomainKeyVersions lists the DK versions this HSM holds, ascending.
	// Empty (and no error) when the node has not received the DK yet.
	DomainKeyVersions(ctx context.Context) ([]uint32, error)
	// CurrentDomainKeyVersion is the newest DK version held; new material is
	// wrapped under it. ErrNoDomainKey when none is held.
	CurrentDomainKeyVersion(ctx context.Context) (uint32, error)
	// Wrap seals material under DK version dkVersion with AES key wrap with
	// padding (RFC 5649). The result is safe to store and replicate.
	Wrap(ctx context.Context, dkVersion uint32, material []byte) ([]byte, error)
	// Unwrap reverses Wrap into process memory (SOFTWARE protection level).
	// ErrUnwrap when the blob was not made under that DK version.
	Unwrap(ctx context.Context, dkVersion uint32, wrapped []byte) ([]byte, error)
	// Random returns n bytes from the HSM's random source.
	Random(ctx context.Context, n int) ([]byte, error)
	// Health reports nil while the HSM can serve crypto; otherwise why not
	// (ErrNoDomainKey, ErrUnavailable, ...).
	Health(ctx context.Context) error
	// Close releases sessions and wipes cached secrets; later calls fail
	// with ErrClosed.
	Close() error
	// Info says what the backend is; every HSM can.
	Info() Info

	// The capabilities: each accessor returns the capability and true, or
	// nil and false when this HSM lacks it. The answer is fixed for the
	// HSM's life (a token missing a mechanism still has KeyOps; its calls
	// for that kind give ErrUnsupported). A decorator returns false exactly
	// when the HSM it wraps does, and otherwise a wrapped capability whose
	// calls go through the decorator too.

	// KeyOps runs customer-key operations inside the HSM (protection level
	// HSM).
	KeyOps() (KeyOps, bool)
	// Enroller hands domain keys to, and takes them from, another HSM
	// (enrolment of a joining node, and catch-up after a DK rotation).
	Enroller() (Enroller, bool)
	// DomainKeyRotator makes a new DK version inside the HSM.
	DomainKeyRotator() (DomainKeyRotator, bool)
	// Token lists the device's mechanisms for operators (PKCS#11).
	Token() (Token, bool)
}

// Info describes a backend for `meridian operator hsm status` and logs.
type Info struct {
	Backend string // "soft" or "pkcs11"
	Detail  string // e.g. the sealed file path or token label; never secrets
}

// DomainKeyRotator is the capability to add a DK version.
type DomainKeyRotator interface {
	// RotateDomainKey makes DK version n+1 inside the HSM and returns it;
	// it becomes current. Older versions stay, so their blobs still
	// unwrap. ErrNoDomainKey when the HSM holds no DK yet.
	RotateDomainKey(ctx context.Context) (uint32, error)
}

// Token is the operator's view of a device that offers a list of
// mechanisms (a PKCS#11 token): which of those Meridian uses it has.
type Token interface {
	// Mechanisms reports, for every mechanism the backend uses, whether
	// the device offers it, read afresh (a device failure is
	// ErrUnavailable, as for any call).
	Mechanisms(ctx context.Context) ([]Mechanism, error)
}

// Mechanism is one device mechanism a backend uses, and whether the device
// offers it: what `meridian operator hsm status` prints.
type Mechanism struct {
	Name    string // e.g. "CKM_AES_KEY_WRAP_PAD"
	Code    uint   // the device's number for it (a PKCS#11 CKM_ value)
	Present bool
	// Required: the backend refuses to open a device without it. The
	// others each limit a feature (Use says which) when missing.
	Required bool
	Use      string
}

// Enroller is the capability to hand the HSM's domain keys to another HSM
// without the keys ever existing in the clear outside an HSM (DESIGN.md
// "Enrolment"). The joining node's HSM makes a transport key pair; a
// member wraps every DK version to the joiner's public key inside its own
// HSM; the joiner unwraps them inside its HSM. RSA-OAEP with SHA-1 is the
// transport wrap because SoftHSM 2.6 supports no other OAEP hash; OAEP's
// security does not rest on the hash's collision resistance.
type Enroller interface {
	// TransportPublicKey returns the PKIX DER public key of this HSM's
	// enrolment key pair (RSA-3072), creating the pair on first use. The
	// pair lives until ImportDomainKeys succeeds or the HSM closes.
	TransportPublicKey(ctx context.Context) ([]byte, error)
	// ExportDomainKeys wraps every DK version this HSM holds to
	// transportPub, inside the HSM.
	ExportDomainKeys(ctx context.Context, transportPub []byte) (*DomainKeyBundle, error)
	// ImportDomainKeys unwraps the bundle with this HSM's transport private
	// key and stores the DK versions it lacks. Versions it already holds
	// are left alone. ErrUnwrap if the bundle was not made for this HSM.
	ImportDomainKeys(ctx context.Context, b *DomainKeyBundle) error
}

// DomainKeyBundle carries DK versions wrapped to one transport key. Its
// wire encoding (MarshalBinary/UnmarshalBinary, in bundle.go) is what the
// cluster's join reply carries.
type DomainKeyBundle struct {
	Versions []WrappedDomainKey
}

// WrappedDomainKey is one DK version, RSA-OAEP(SHA-1)-wrapped.
type WrappedDomainKey struct {
	Version uint32
	Wrapped []byte
}

// KeyKind says what a customer key version is when it is unwrapped into
// the HSM for protection level HSM.
type KeyKind int

const (
	KindAES256     KeyKind = iota + 1 // AES-256 for GCM
	KindHMACSHA256                    // generic secret for HMAC-SHA-256
	KindHMACSHA384
	KindHMACSHA512
	KindRSAPrivate   // PKCS#8 RSA private key
	KindECDSAPrivate // PKCS#8 EC private key (P-256, P-384, P-521)
)

// IsAES reports an AES key (for GCM).
func (k KeyKind) IsAES() bool { return k == KindAES256 }

// IsHMAC reports an HMAC key of any hash.
func (k KeyKind) IsHMAC() bool {
	return k == KindHMACSHA256 || k == KindHMACSHA384 || k == KindHMACSHA512
}

// IsRSA reports an RSA private key (signing and OAEP decryption).
func (k KeyKind) IsRSA() bool { return k == KindRSAPrivate }

// CanSign reports a private key that signs (RSA or ECDSA).
func (k KeyKind) CanSign() bool { return k == KindRSAPrivate || k == KindECDSAPrivate }

// KeyHandle names a key version unwrapped into the HSM. It is valid until
// Destroy, Close, or an HSM restart, after which operations fail with
// ErrHandleInvalid and the caller imports the version again.
type KeyHandle interface {
	Kind() KeyKind
}

// ErrHandleInvalid: the handle's object is gone (HSM restarted or the
// handle was destroyed); import the version again.
var ErrHandleInvalid = errors.New("hsm: key handle no longer valid")

// KeyOps is the capability to run customer-key operations inside the HSM
// (protection level HSM): the version is unwrapped into the HSM as a
// non-extractable object and never enters process memory.
type KeyOps interface {
	// ImportWrapped unwraps a blob made by Wrap under dkVersion into the
	// HSM as a non-extractable, non-token (session) object of kind.
	ImportWrapped(ctx context.Context, dkVersion uint32, wrapped []byte, kind KeyKind) (KeyHandle, error)
	// EncryptGCM seals with AES-256-GCM under an explicit 12-byte nonce
	// that the caller generated (HSMs differ in IV generation; SoftHSM
	// accepts an empty IV, so an empty or short nonce is ErrInvalidInput).
	// The result is ciphertext||16-byte tag.
	EncryptGCM(ctx context.Context, h KeyHandle, nonce, plaintext, aad []byte) ([]byte, error)
	// DecryptGCM opens what EncryptGCM sealed; ErrUnwrap on a bad tag.
	DecryptGCM(ctx context.Context, h KeyHandle, nonce, sealed, aad []byte) ([]byte, error)
	// HMAC computes the MAC of msg with an HMAC key of the handle's kind.
	HMAC(ctx context.Context, h KeyHandle, msg []byte) ([]byte, error)
	// Sign signs a digest (already hashed with hash). For RSA, pss picks
	// RSASSA-PSS (salt = hash length) over PKCS#1 v1.5; ECDSA returns an
	// ASN.1 DER signature.
	Sign(ctx context.Context, h KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error)
	// DecryptOAEP decrypts RSA-OAEP with hash for both OAEP and MGF1.
	DecryptOAEP(ctx context.Context, h KeyHandle, hash crypto.Hash, ciphertext []byte) ([]byte, error)
	// Destroy removes the object; later use gives ErrHandleInvalid.
	Destroy(ctx context.Context, h KeyHandle) error
}
