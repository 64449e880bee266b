package hsm

import (
	"context"
	"crypto"
)

// Op names one HSM call for an Interceptor. The values are the
// operation labels of Meridian's HSM metrics.
type Op string

// The calls of HSM and of each capability.
const (
	OpDomainKeyVersions       Op = "domain_key_versions"
	OpCurrentDomainKeyVersion Op = "current_domain_key_version"
	OpWrap                    Op = "wrap"
	OpUnwrap                  Op = "unwrap"
	OpRandom                  Op = "random"
	OpHealth                  Op = "health"

	// KeyOps.
	OpImportWrapped Op = "import"
	OpEncryptGCM    Op = "encrypt"
	OpDecryptGCM    Op = "decrypt"
	OpHMAC          Op = "hmac"
	OpSign          Op = "sign"
	OpDecryptOAEP   Op = "decrypt_oaep"
	OpDestroy       Op = "destroy"

	// Enroller.
	OpTransportPublicKey Op = "transport_public_key"
	OpExportDomainKeys   Op = "export_domain_keys"
	OpImportDomainKeys   Op = "import_domain_keys"

	// DomainKeyRotator.
	OpRotateDomainKey Op = "rotate_domain_key"

	// Token.
	OpMechanisms Op = "mechanisms"
)

// Interceptor runs around one HSM call: call makes it (with the context
// the interceptor passes), and what the interceptor returns is the call's
// error. An interceptor may time the call, fail it without making it, or
// hold it. It calls call at most once, and returns only after call has
// returned (the call's results are written as it returns).
type Interceptor func(ctx context.Context, op Op, call func(context.Context) error) error

// Intercept returns h with every call passed through fn: the core calls
// and every call through a capability of the result, so a decorator built
// on it (node metrics, chaos fault injection) sees enrolment, key
// operations and operator calls as well as Wrap and Unwrap. Its
// capabilities are h's, each wrapped: an accessor reports false exactly
// when h's does. Info and Close pass straight through to h.
//
// It returns the interface, not a concrete type, on purpose: a caller
// reaches the capabilities through the accessors only.
func Intercept(h HSM, fn Interceptor) HSM {
	return &intercepted{h: h, fn: fn}
}

type intercepted struct {
	h  HSM
	fn Interceptor
}

var _ HSM = (*intercepted)(nil)

// through makes the call f through fn as op and returns f's result.
func through[T any](ctx context.Context, fn Interceptor, op Op, f func(context.Context) (T, error)) (T, error) {
	var v T
	err := fn(ctx, op, func(ctx context.Context) error {
		var err error
		v, err = f(ctx)
		return err
	})
	return v, err
}

func (w *intercepted) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	return through(ctx, w.fn, OpDomainKeyVersions, w.h.DomainKeyVersions)
}

func (w *intercepted) CurrentDomainKeyVersion(ctx context.Context) (uint32, error) {
	return through(ctx, w.fn, OpCurrentDomainKeyVersion, w.h.CurrentDomainKeyVersion)
}

func (w *intercepted) Wrap(ctx context.Context, dkVersion uint32, material []byte) ([]byte, error) {
	return through(ctx, w.fn, OpWrap, func(ctx context.Context) ([]byte, error) { return w.h.Wrap(ctx, dkVersion, material) })
}

func (w *intercepted) Unwrap(ctx context.Context, dkVersion uint32, wrapped []byte) ([]byte, error) {
	return through(ctx, w.fn, OpUnwrap, func(ctx context.Context) ([]byte, error) { return w.h.Unwrap(ctx, dkVersion, wrapped) })
}

func (w *intercepted) Random(ctx context.Context, n int) ([]byte, error) {
	return through(ctx, w.fn, OpRandom, func(ctx context.Context) ([]byte, error) { return w.h.Random(ctx, n) })
}

func (w *intercepted) Health(ctx context.Context) error {
	return w.fn(ctx, OpHealth, w.h.Health)
}

func (w *intercepted) Close() error { return w.h.Close() }

func (w *intercepted) Info() Info { return w.h.Info() }

func (w *intercepted) KeyOps() (KeyOps, bool) {
	return wrapCapability(w.h.KeyOps, func(k KeyOps) KeyOps { return interceptedKeyOps{fn: w.fn, k: k} })
}

func (w *intercepted) Enroller() (Enroller, bool) {
	return wrapCapability(w.h.Enroller, func(e Enroller) Enroller { return interceptedEnroller{fn: w.fn, e: e} })
}

func (w *intercepted) DomainKeyRotator() (DomainKeyRotator, bool) {
	return wrapCapability(w.h.DomainKeyRotator, func(r DomainKeyRotator) DomainKeyRotator { return interceptedRotator{fn: w.fn, r: r} })
}

func (w *intercepted) Token() (Token, bool) {
	return wrapCapability(w.h.Token, func(t Token) Token { return interceptedToken{fn: w.fn, t: t} })
}

// wrapCapability is the capability get returns, wrapped, or none when
// get has none: a decorator's accessor, honest by construction.
func wrapCapability[C any](get func() (C, bool), wrap func(C) C) (C, bool) {
	c, ok := get()
	if !ok {
		var none C
		return none, false
	}
	return wrap(c), true
}

type interceptedKeyOps struct {
	fn Interceptor
	k  KeyOps
}

func (x interceptedKeyOps) ImportWrapped(ctx context.Context, dkVersion uint32, wrapped []byte, kind KeyKind) (KeyHandle, error) {
	return through(ctx, x.fn, OpImportWrapped, func(ctx context.Context) (KeyHandle, error) {
		return x.k.ImportWrapped(ctx, dkVersion, wrapped, kind)
	})
}

func (x interceptedKeyOps) EncryptGCM(ctx context.Context, h KeyHandle, nonce, plaintext, aad []byte) ([]byte, error) {
	return through(ctx, x.fn, OpEncryptGCM, func(ctx context.Context) ([]byte, error) {
		return x.k.EncryptGCM(ctx, h, nonce, plaintext, aad)
	})
}

func (x interceptedKeyOps) DecryptGCM(ctx context.Context, h KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	return through(ctx, x.fn, OpDecryptGCM, func(ctx context.Context) ([]byte, error) {
		return x.k.DecryptGCM(ctx, h, nonce, sealed, aad)
	})
}

func (x interceptedKeyOps) HMAC(ctx context.Context, h KeyHandle, msg []byte) ([]byte, error) {
	return through(ctx, x.fn, OpHMAC, func(ctx context.Context) ([]byte, error) { return x.k.HMAC(ctx, h, msg) })
}

func (x interceptedKeyOps) Sign(ctx context.Context, h KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error) {
	return through(ctx, x.fn, OpSign, func(ctx context.Context) ([]byte, error) { return x.k.Sign(ctx, h, hash, pss, digest) })
}

func (x interceptedKeyOps) DecryptOAEP(ctx context.Context, h KeyHandle, hash crypto.Hash, ciphertext []byte) ([]byte, error) {
	return through(ctx, x.fn, OpDecryptOAEP, func(ctx context.Context) ([]byte, error) {
		return x.k.DecryptOAEP(ctx, h, hash, ciphertext)
	})
}

func (x interceptedKeyOps) Destroy(ctx context.Context, h KeyHandle) error {
	return x.fn(ctx, OpDestroy, func(ctx context.Context) error { return x.k.Destroy(ctx, h) })
}

type interceptedEnroller struct {
	fn Interceptor
	e  Enroller
}

func (x interceptedEnroller) TransportPublicKey(ctx context.Context) ([]byte, error) {
	return through(ctx, x.fn, OpTransportPublicKey, x.e.TransportPublicKey)
}

func (x interceptedEnroller) ExportDomainKeys(ctx context.Context, transportPub []byte) (*DomainKeyBundle, error) {
	return through(ctx, x.fn, OpExportDomainKeys, func(ctx context.Context) (*DomainKeyBundle, error) {
		return x.e.ExportDomainKeys(ctx, transportPub)
	})
}

func (x interceptedEnroller) ImportDomainKeys(ctx context.Context, b *DomainKeyBundle) error {
	return x.fn(ctx, OpImportDomainKeys, func(ctx context.Context) error { return x.e.ImportDomainKeys(ctx, b) })
}

type interceptedRotator struct {
	fn Interceptor
	r  DomainKeyRotator
}

func (x interceptedRotator) RotateDomainKey(ctx context.Context) (uint32, error) {
	return through(ctx, x.fn, OpRotateDomainKey, x.r.RotateDomainKey)
}

type interceptedToken struct {
	fn Interceptor
	t  Token
}

func (x interceptedToken) Mechanisms(ctx context.Context) ([]Mechanism, error) {
	return through(ctx, x.fn, OpMechanisms, x.t.Mechanisms)
}
