// Package hsm defines what Meridian needs from a hardware security module and
// holds its backends: soft (pure Go, the embedded default) and, later,
// pkcs11. The domain key (DK) never leaves an HSM in the clear; everything
// else Meridian keeps is wrapped under it.
package hsm

import (
	"context"
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
}

// Info describes a backend for `meridian operator hsm status` and logs.
type Info struct {
	Backend string // "soft" or "pkcs11"
	Detail  string // e.g. the sealed file path or token label; never secrets
}

// Describer is implemented by backends that can say what they are.
type Describer interface {
	Info() Info
}
