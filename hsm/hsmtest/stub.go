package hsmtest

import (
	"context"
	"crypto"
	"slices"
	"sync"

	"github.com/meridiankms/meridian/hsm"
)

// Stub is an hsm.HSM for testing decorators: it does no crypto, has exactly
// the capabilities it is made with, records every call it receives, and
// answers each with fixed results that depend only on the arguments (or
// with Err). It is safe for concurrent use.
type Stub struct {
	// Err, when set, is what every call but Info and Close answers.
	Err error

	lacking []Capability
	mu      sync.Mutex
	calls   []hsm.Op
	closed  bool
}

var _ hsm.HSM = (*Stub)(nil)

// NewStub returns a Stub with every capability but those lacking.
func NewStub(lacking ...Capability) *Stub {
	return &Stub{lacking: lacking}
}

// StubHandle is the key handle a Stub gives out; it takes any handle.
type StubHandle struct{ K hsm.KeyKind }

// Kind is the kind the handle was imported as.
func (h StubHandle) Kind() hsm.KeyKind { return h.K }

// Calls returns the calls received so far, in order.
func (s *Stub) Calls() []hsm.Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Closed reports whether Close was called.
func (s *Stub) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Stub) record(op hsm.Op) error {
	s.mu.Lock()
	s.calls = append(s.calls, op)
	s.mu.Unlock()
	return s.Err
}

// answer records op and returns v, or Err.
func answer[T any](s *Stub, op hsm.Op, v T) (T, error) {
	if err := s.record(op); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// tagged is b prefixed with tag: a result that shows which call, with
// which input, made it.
func tagged(tag string, b ...[]byte) []byte {
	out := []byte(tag)
	for _, x := range b {
		out = append(append(out, '|'), x...)
	}
	return out
}

// The hsm.HSM methods, and those of the capabilities below, record their
// call and answer from their arguments only.

func (s *Stub) DomainKeyVersions(context.Context) ([]uint32, error) {
	return answer(s, hsm.OpDomainKeyVersions, []uint32{1, 2})
}

func (s *Stub) CurrentDomainKeyVersion(context.Context) (uint32, error) {
	return answer(s, hsm.OpCurrentDomainKeyVersion, uint32(2))
}

func (s *Stub) Wrap(_ context.Context, v uint32, m []byte) ([]byte, error) {
	return answer(s, hsm.OpWrap, tagged("wrap", []byte{byte(v)}, m))
}

func (s *Stub) Unwrap(_ context.Context, v uint32, w []byte) ([]byte, error) {
	return answer(s, hsm.OpUnwrap, tagged("unwrap", []byte{byte(v)}, w))
}

func (s *Stub) Random(_ context.Context, n int) ([]byte, error) {
	return answer(s, hsm.OpRandom, make([]byte, n))
}

func (s *Stub) Health(context.Context) error { return s.record(hsm.OpHealth) }

func (s *Stub) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *Stub) Info() hsm.Info { return hsm.Info{Backend: "stub", Detail: "hsmtest.Stub"} }

func (s *Stub) KeyOps() (hsm.KeyOps, bool) { return offer[hsm.KeyOps](s, CapKeyOps, stubKeyOps{s}) }

func (s *Stub) Enroller() (hsm.Enroller, bool) {
	return offer[hsm.Enroller](s, CapEnroller, stubEnroller{s})
}

func (s *Stub) DomainKeyRotator() (hsm.DomainKeyRotator, bool) {
	return offer[hsm.DomainKeyRotator](s, CapDomainKeyRotator, stubRotator{s})
}

func (s *Stub) Token() (hsm.Token, bool) { return offer[hsm.Token](s, CapToken, stubToken{s}) }

// offer is v when s has capability c.
func offer[C any](s *Stub, c Capability, v C) (C, bool) {
	if slices.ContainsFunc(s.lacking, func(l Capability) bool { return l.name == c.name }) {
		var none C
		return none, false
	}
	return v, true
}

// The capabilities are separate types, so a Stub lacking one cannot be
// type-asserted into having it.
type (
	stubKeyOps   struct{ s *Stub }
	stubEnroller struct{ s *Stub }
	stubRotator  struct{ s *Stub }
	stubToken    struct{ s *Stub }
)

func (x stubKeyOps) ImportWrapped(_ context.Context, v uint32, w []byte, k hsm.KeyKind) (hsm.KeyHandle, error) {
	return answer[hsm.KeyHandle](x.s, hsm.OpImportWrapped, StubHandle{k})
}

func (x stubKeyOps) EncryptGCM(_ context.Context, h hsm.KeyHandle, nonce, pt, aad []byte) ([]byte, error) {
	return answer(x.s, hsm.OpEncryptGCM, tagged("encrypt", nonce, pt, aad))
}

func (x stubKeyOps) DecryptGCM(_ context.Context, h hsm.KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	return answer(x.s, hsm.OpDecryptGCM, tagged("decrypt", nonce, sealed, aad))
}

func (x stubKeyOps) HMAC(_ context.Context, h hsm.KeyHandle, msg []byte) ([]byte, error) {
	return answer(x.s, hsm.OpHMAC, tagged("hmac", msg))
}

func (x stubKeyOps) Sign(_ context.Context, h hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) ([]byte, error) {
	return answer(x.s, hsm.OpSign, tagged("sign", []byte(hash.String()), digest))
}

func (x stubKeyOps) DecryptOAEP(_ context.Context, h hsm.KeyHandle, hash crypto.Hash, ct []byte) ([]byte, error) {
	return answer(x.s, hsm.OpDecryptOAEP, tagged("oaep", []byte(hash.String()), ct))
}

func (x stubKeyOps) Destroy(context.Context, hsm.KeyHandle) error { return x.s.record(hsm.OpDestroy) }

func (x stubEnroller) TransportPublicKey(context.Context) ([]byte, error) {
	return answer(x.s, hsm.OpTransportPublicKey, []byte("transport-public-key"))
}

func (x stubEnroller) ExportDomainKeys(_ context.Context, pub []byte) (*hsm.DomainKeyBundle, error) {
	return answer(x.s, hsm.OpExportDomainKeys, &hsm.DomainKeyBundle{Versions: []hsm.WrappedDomainKey{{Version: 1, Wrapped: tagged("export", pub)}}})
}

func (x stubEnroller) ImportDomainKeys(context.Context, *hsm.DomainKeyBundle) error {
	return x.s.record(hsm.OpImportDomainKeys)
}

func (x stubRotator) RotateDomainKey(context.Context) (uint32, error) {
	return answer(x.s, hsm.OpRotateDomainKey, uint32(3))
}

func (x stubToken) Mechanisms(context.Context) ([]hsm.Mechanism, error) {
	return answer(x.s, hsm.OpMechanisms, []hsm.Mechanism{{Name: "CKM_STUB", Code: 1, Present: true, Required: true, Use: "tests"}})
}
