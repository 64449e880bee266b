package hsmtest

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/meridiankms/meridian/hsm"
)

// Call is one call of hsm.HSM or of one of its capabilities, with
// arguments a Stub accepts, so a decorator test can make every call the
// same way.
type Call struct {
	Op hsm.Op
	// Do makes the call on h and returns its result and error; a call
	// through a capability h lacks fails without reaching h.
	Do func(ctx context.Context, h hsm.HSM) (any, error)
}

var errNoCapability = errors.New("hsmtest: the HSM lacks the call's capability")

// via is a Call through the capability get returns.
func via[C any](get func(hsm.HSM) (C, bool), op hsm.Op, f func(ctx context.Context, c C) (any, error)) Call {
	return Call{Op: op, Do: func(ctx context.Context, h hsm.HSM) (any, error) {
		c, ok := get(h)
		if !ok {
			return nil, errNoCapability
		}
		return f(ctx, c)
	}}
}

// none turns an error-only call into a Call's result.
func none(err error) (any, error) { return nil, err }

var stubKey = StubHandle{K: hsm.KindAES256}

// Calls are every call of hsm.HSM and its capabilities but Info and
// Close, one per hsm.Op.
var Calls = []Call{
	{hsm.OpDomainKeyVersions, func(ctx context.Context, h hsm.HSM) (any, error) { return h.DomainKeyVersions(ctx) }},
	{hsm.OpCurrentDomainKeyVersion, func(ctx context.Context, h hsm.HSM) (any, error) { return h.CurrentDomainKeyVersion(ctx) }},
	{hsm.OpWrap, func(ctx context.Context, h hsm.HSM) (any, error) { return h.Wrap(ctx, 1, []byte("material")) }},
	{hsm.OpUnwrap, func(ctx context.Context, h hsm.HSM) (any, error) { return h.Unwrap(ctx, 1, []byte("blob")) }},
	{hsm.OpRandom, func(ctx context.Context, h hsm.HSM) (any, error) { return h.Random(ctx, 7) }},
	{hsm.OpHealth, func(ctx context.Context, h hsm.HSM) (any, error) { return none(h.Health(ctx)) }},

	via(hsm.HSM.KeyOps, hsm.OpImportWrapped, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.ImportWrapped(ctx, 1, []byte("blob"), hsm.KindHMACSHA256)
	}),
	via(hsm.HSM.KeyOps, hsm.OpEncryptGCM, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.EncryptGCM(ctx, stubKey, []byte("nonce"), []byte("pt"), []byte("aad"))
	}),
	via(hsm.HSM.KeyOps, hsm.OpDecryptGCM, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.DecryptGCM(ctx, stubKey, []byte("nonce"), []byte("sealed"), []byte("aad"))
	}),
	via(hsm.HSM.KeyOps, hsm.OpHMAC, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.HMAC(ctx, stubKey, []byte("msg"))
	}),
	via(hsm.HSM.KeyOps, hsm.OpSign, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.Sign(ctx, stubKey, crypto.SHA384, true, []byte("digest"))
	}),
	via(hsm.HSM.KeyOps, hsm.OpDecryptOAEP, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return k.DecryptOAEP(ctx, stubKey, crypto.SHA256, []byte("ct"))
	}),
	via(hsm.HSM.KeyOps, hsm.OpDestroy, func(ctx context.Context, k hsm.KeyOps) (any, error) {
		return none(k.Destroy(ctx, stubKey))
	}),

	via(hsm.HSM.Enroller, hsm.OpTransportPublicKey, func(ctx context.Context, e hsm.Enroller) (any, error) {
		return e.TransportPublicKey(ctx)
	}),
	via(hsm.HSM.Enroller, hsm.OpExportDomainKeys, func(ctx context.Context, e hsm.Enroller) (any, error) {
		return e.ExportDomainKeys(ctx, []byte("pub"))
	}),
	via(hsm.HSM.Enroller, hsm.OpImportDomainKeys, func(ctx context.Context, e hsm.Enroller) (any, error) {
		return none(e.ImportDomainKeys(ctx, &hsm.DomainKeyBundle{}))
	}),

	via(hsm.HSM.DomainKeyRotator, hsm.OpRotateDomainKey, func(ctx context.Context, r hsm.DomainKeyRotator) (any, error) {
		return r.RotateDomainKey(ctx)
	}),

	via(hsm.HSM.Token, hsm.OpMechanisms, func(ctx context.Context, tk hsm.Token) (any, error) {
		return tk.Mechanisms(ctx)
	}),
}

// RunDecoratorContract checks that decorate forwards honestly. The HSM it
// returns for an HSM h (a Stub) must have exactly h's capabilities, for
// every combination with one missing; every call, core or through a
// capability, must reach h exactly once and come back with h's result
// unchanged, or h's error (errors.Is); Info and Close must reach h. decorate
// must not fail or hold calls by itself (a fault switch left off).
func RunDecoratorContract(t *testing.T, decorate func(t *testing.T, h hsm.HSM) hsm.HSM) {
	t.Helper()
	t.Run("Capabilities", func(t *testing.T) {
		check := func(name string, s *Stub, want func(c Capability) bool) {
			d := decorate(t, s)
			for _, c := range Capabilities {
				present, ok := c.Has(d)
				if w := want(c); ok != w || present != w {
					t.Errorf("%s: decorated %s() = (value present %v, %v); want %v, the wrapped HSM's answer", name, c, present, ok, w)
				}
			}
		}
		check("all", NewStub(), func(Capability) bool { return true })
		for _, missing := range Capabilities {
			check("without "+missing.name, NewStub(missing), func(c Capability) bool { return c.name != missing.name })
		}
	})
	t.Run("Calls", func(t *testing.T) {
		for _, c := range Calls {
			s := NewStub()
			got, err := c.Do(context.Background(), decorate(t, s))
			if err != nil {
				t.Errorf("%s through the decorator: %v", c.Op, err)
				continue
			}
			want, _ := c.Do(context.Background(), NewStub())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s through the decorator = %v; the HSM answered %v", c.Op, got, want)
			}
			if calls := s.Calls(); !slices.Equal(calls, []hsm.Op{c.Op}) {
				t.Errorf("%s through the decorator: the HSM received %v", c.Op, calls)
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, c := range Calls {
			s := NewStub()
			s.Err = fmt.Errorf("stub %s: %w", c.Op, hsm.ErrUnavailable)
			if _, err := c.Do(context.Background(), decorate(t, s)); !errors.Is(err, s.Err) {
				t.Errorf("%s through the decorator: err = %v, want the HSM's %v", c.Op, err, s.Err)
			}
		}
	})
	t.Run("InfoClose", func(t *testing.T) {
		s := NewStub()
		d := decorate(t, s)
		if got := d.Info(); got != s.Info() {
			t.Errorf("Info = %+v, want the HSM's %+v", got, s.Info())
		}
		if err := d.Close(); err != nil || !s.Closed() {
			t.Errorf("Close = %v; reached the HSM: %v", err, s.Closed())
		}
	})
}
