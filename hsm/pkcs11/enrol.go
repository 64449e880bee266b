package pkcs11

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

var _ hsm.Enroller = (*HSM)(nil)

// ErrTransportKeyNotTrusted: with Config.RequireTrustedWrap the DK can be
// wrapped only to a transport key the token's SO marked trusted, and this
// one is not (TrustTransportKey marks it).
var ErrTransportKeyNotTrusted = errors.New("pkcs11: transport key not marked trusted by the token's security officer")

// transportLabel is the CKA_LABEL of the enrolment key pair's objects.
const transportLabel = "meridian-transport"

// transportPair is the enrolment key pair: session objects, so they die
// with the session that made them (at the latest when the HSM closes or
// reconnects) and never reach the token's storage.
type transportPair struct {
	mu        sync.Mutex // serialises making, using and destroying the pair
	pub, priv pkcs11.ObjectHandle
	der       []byte // PKIX DER of pub; nil: no pair
	gen       uint64 // session generation the objects belong to
}

// oaep is RSA-OAEP with SHA-1 and MGF1-SHA-1 and no label: the only OAEP
// SoftHSM 2.6 offers (see hsm.Enroller), and what the soft backend uses.
func oaep() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
}

// TransportPublicKey returns the PKIX DER public key of this token's
// enrolment key pair, generating it inside the token on first use: RSA-3072,
// the private half sensitive, non-extractable and usable only to unwrap.
// The pair lives until ImportDomainKeys succeeds, the HSM closes, or a
// device error makes the backend reconnect (then this makes a new one).
func (h *HSM) TransportPublicKey(ctx context.Context) ([]byte, error) {
	t := &h.transport
	t.mu.Lock()
	defer t.mu.Unlock()
	var der []byte
	err := h.withSession(ctx, "transport key", func(s pkcs11.SessionHandle) error {
		if h.transportLive() {
			der = slices.Clone(t.der)
			return nil
		}
		pub, priv, err := h.p.GenerateKeyPair(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			transportPublicTemplate(), transportPrivateTemplate())
		if err != nil {
			return fmt.Errorf("generate RSA-%d key pair: %w", hsm.MinTransportKeyBits, err)
		}
		der, err = h.publicDER(s, pub)
		if err != nil {
			_ = h.p.DestroyObject(s, priv)
			_ = h.p.DestroyObject(s, pub)
			return err
		}
		h.mu.Lock()
		t.gen = h.gen
		h.mu.Unlock()
		t.pub, t.priv, t.der = pub, priv, slices.Clone(der)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return der, nil
}

// transportLive reports whether the pair exists in the current session
// generation; t.mu is held.
func (h *HSM) transportLive() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.transport.der != nil && h.transport.gen == h.gen
}

func transportPublicTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, hsm.MinTransportKeyBits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, transportLabel),
	}
}

// transportPrivateTemplate: the private key unwraps, and does nothing
// else; its value never leaves the token.
func transportPrivateTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, transportLabel),
	}
}

// publicDER builds the PKIX encoding from the object's modulus and
// exponent (PKCS#11 has no standard attribute holding it).
func (h *HSM) publicDER(s pkcs11.SessionHandle, pub pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := h.p.GetAttributeValue(s, pub, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("read transport public key: %w", err)
	}
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("transport public key exponent of %d bytes", len(attrs[1].Value))
	}
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())})
	if err != nil {
		return nil, fmt.Errorf("encode transport public key: %w", err)
	}
	return der, nil
}

// ExportDomainKeys wraps every DK version on the token to transportPub
// with C_WrapKey and RSA-OAEP(SHA-1): the DKs leave the token only
// wrapped. Without Config.RequireTrustedWrap the public key is imported
// as a session object for the duration of the call; with it, the token
// must already hold it as an SO-trusted object (TrustTransportKey), or
// the call fails with ErrTransportKeyNotTrusted.
func (h *HSM) ExportDomainKeys(ctx context.Context, transportPub []byte) (*hsm.DomainKeyBundle, error) {
	pub, err := hsm.ParseTransportPublicKey(transportPub)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: export domain keys: %w", err)
	}
	b := &hsm.DomainKeyBundle{}
	err = h.withSession(ctx, "export domain keys", func(s pkcs11.SessionHandle) error {
		vs, err := h.versions(s)
		switch {
		case err != nil:
			return err
		case len(vs) == 0:
			return fmt.Errorf("token %q: %w", h.cfg.TokenLabel, hsm.ErrNoDomainKey)
		case len(vs) > hsm.MaxBundleVersions:
			return fmt.Errorf("token %q holds %d dk versions, a bundle carries at most %d", h.cfg.TokenLabel, len(vs), hsm.MaxBundleVersions)
		}
		wk, done, err := h.wrappingKey(s, pub)
		if err != nil {
			return err
		}
		defer done()
		for _, v := range vs {
			var w []byte
			err := h.withDK(s, v, func(dk pkcs11.ObjectHandle) error {
				var err error
				w, err = h.p.WrapKey(s, oaep(), wk, dk)
				return err
			})
			if isCode(err, pkcs11.CKR_KEY_NOT_WRAPPABLE) {
				return fmt.Errorf("dk v%d is CKA_WRAP_WITH_TRUSTED and the transport key is not trusted: %w", v, ErrTransportKeyNotTrusted)
			}
			if err != nil {
				return fmt.Errorf("wrap dk v%d: %w", v, err)
			}
			b.Versions = append(b.Versions, hsm.WrappedDomainKey{Version: v, Wrapped: w})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// wrappingKey returns the token object to wrap to, and what to do when
// done with it.
func (h *HSM) wrappingKey(s pkcs11.SessionHandle, pub *rsa.PublicKey) (pkcs11.ObjectHandle, func(), error) {
	if h.cfg.RequireTrustedWrap {
		objs, err := h.find(s, trustedQuery(pub), 1)
		if err != nil {
			return 0, nil, err
		}
		if len(objs) == 0 {
			return 0, nil, fmt.Errorf("token %q holds no trusted copy of the joiner's transport key (its SO must run TrustTransportKey): %w", h.cfg.TokenLabel, ErrTransportKeyNotTrusted)
		}
		return objs[0], func() {}, nil
	}
	o, err := h.p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, pub.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.E)).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
	})
	if err != nil {
		return 0, nil, fmt.Errorf("import transport public key: %w", err)
	}
	return o, func() { _ = h.p.DestroyObject(s, o) }, nil
}

// trustedQuery finds an SO-trusted token copy of pub.
func trustedQuery(pub *rsa.PublicKey) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, pub.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.E)).Bytes()),
	}
}

// ImportDomainKeys unwraps the versions of b the token lacks with the
// transport private key (C_UnwrapKey, RSA-OAEP) into token AES keys with
// the DK template and label, so they never exist outside the token in
// the clear. It is all or nothing: a bad entry destroys what this call
// made. On success the transport pair is destroyed; a bundle whose
// versions are all held already is a no-op that needs no pair.
func (h *HSM) ImportDomainKeys(ctx context.Context, b *hsm.DomainKeyBundle) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("pkcs11: import domain keys: %w", err)
	}
	h.dkMu.Lock() // no rotation may make a version while we add ours
	defer h.dkMu.Unlock()
	defer h.forgetVersions()
	t := &h.transport
	t.mu.Lock()
	defer t.mu.Unlock()
	return h.withSession(ctx, "import domain keys", func(s pkcs11.SessionHandle) error {
		vs, err := h.versions(s)
		if err != nil {
			return err
		}
		var need []hsm.WrappedDomainKey
		for _, w := range b.Versions {
			if !slices.Contains(vs, w.Version) {
				need = append(need, w)
			}
		}
		if len(need) == 0 {
			return nil
		}
		if !h.transportLive() {
			return fmt.Errorf("no transport key pair (TransportPublicKey makes one; a successful import or a reconnect ends it): %w", hsm.ErrUnwrap)
		}
		var made []pkcs11.ObjectHandle
		for _, w := range need {
			o, err := h.unwrapDK(s, w)
			if err != nil {
				for _, m := range made {
					_ = h.p.DestroyObject(s, m)
				}
				return err
			}
			made = append(made, o)
		}
		_ = h.p.DestroyObject(s, t.priv)
		_ = h.p.DestroyObject(s, t.pub)
		t.pub, t.priv, t.der = 0, 0, nil
		return nil
	})
}

// unwrapDK makes one DK version a token object. A ciphertext that does
// not decrypt under the transport key is the bundle's fault: hsm.ErrUnwrap,
// never a device error.
func (h *HSM) unwrapDK(s pkcs11.SessionHandle, w hsm.WrappedDomainKey) (pkcs11.ObjectHandle, error) {
	// CKA_VALUE_LEN is read-only in an unwrap template: the length comes
	// from the decrypted value.
	tmpl := slices.DeleteFunc(dkTemplate(h.DomainKeyLabel(w.Version), h.cfg.RequireTrustedWrap),
		func(a *pkcs11.Attribute) bool { return a.Type == pkcs11.CKA_VALUE_LEN })
	o, err := h.p.UnwrapKey(s, oaep(), h.transport.priv, w.Wrapped, tmpl)
	switch {
	case integrity(err), isCode(err, pkcs11.CKR_TEMPLATE_INCONSISTENT), isCode(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID):
		return 0, fmt.Errorf("dk v%d: %w", w.Version, hsm.ErrUnwrap)
	case handleGone(err):
		return 0, fmt.Errorf("dk v%d: transport key pair gone: %w", w.Version, hsm.ErrUnwrap)
	case isCode(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID):
		return 0, fmt.Errorf("%w: token %q: %w", ErrDomainKeyPolicy, h.cfg.TokenLabel, err)
	case err != nil:
		return 0, fmt.Errorf("unwrap dk v%d: %w", w.Version, err)
	}
	// SoftHSM 2.6 leaves CKA_VALUE_LEN 0 on unwrapped keys (and then
	// cannot tell a 16-byte value from a 32-byte one); a token that fills
	// it in gets it checked. The bundle's authenticity rests on the join's
	// mTLS channel to a member, not on this check.
	attrs, err := h.p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
	if err == nil && len(attrs[0].Value) == 8 {
		if n := binary.NativeEndian.Uint64(attrs[0].Value); n != 0 && n != 32 {
			err = fmt.Errorf("dk v%d is %d bytes, want 32: %w", w.Version, n, hsm.ErrUnwrap)
		}
	}
	if err != nil {
		_ = h.p.DestroyObject(s, o)
		return 0, fmt.Errorf("dk v%d: check length: %w", w.Version, err)
	}
	return o, nil
}

// TrustTransportKey is the security officer's approval of one joining HSM
// under Config.RequireTrustedWrap: it stores transportPub on the token
// labelled tokenLabel as a CKA_TRUSTED public key object, which only an
// SO session can make, so that ExportDomainKeys may wrap the DK to it.
// The SO logs in for this call only; soPIN never appears in an error.
// Login state is per token and process, so the token must not be open in
// this process (ErrTokenInUse): run it as the operator command, in its
// own process, or with the node stopped. Marking a key twice is harmless.
func TrustTransportKey(ctx context.Context, modulePath, tokenLabel, soPIN string, transportPub []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pkcs11: trust transport key on token %q: %w", tokenLabel, err)
	}
	if soPIN == "" {
		return fmt.Errorf("%w: trust transport key: SO PIN is empty", ErrInvalidConfig)
	}
	pub, err := hsm.ParseTransportPublicKey(transportPub)
	if err != nil {
		return fmt.Errorf("pkcs11: trust transport key: %w", err)
	}
	m, err := acquireModule(modulePath)
	if err != nil {
		return err
	}
	defer m.release()
	if err := m.claim(tokenLabel); err != nil {
		return fmt.Errorf("pkcs11: trust transport key: %w", err)
	}
	defer m.unclaim(tokenLabel)
	if err := trustKey(m.raw, tokenLabel, soPIN, pub); err != nil {
		return fmt.Errorf("pkcs11: trust transport key on token %q: %w", tokenLabel, err)
	}
	return nil
}

func trustKey(p p11, label, soPIN string, pub *rsa.PublicKey) error {
	slot, _, err := findToken(p, label)
	if err != nil {
		return err
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer func() { _ = p.CloseSession(s) }()
	switch err := p.Login(s, pkcs11.CKU_SO, soPIN); {
	case err == nil:
	case isCode(err, pkcs11.CKR_PIN_INCORRECT), isCode(err, pkcs11.CKR_PIN_INVALID), isCode(err, pkcs11.CKR_PIN_LEN_RANGE), isCode(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("SO login: %w", ErrWrongPIN)
	default:
		return fmt.Errorf("SO login: %w", err)
	}
	defer func() { _ = p.Logout(s) }()
	h := &HSM{p: p} // find needs nothing but the module
	found, err := h.find(s, trustedQuery(pub), 1)
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return nil
	}
	tmpl := append(trustedQuery(pub),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, transportLabel+"-trusted"),
	)
	if _, err := p.CreateObject(s, tmpl); err != nil {
		return fmt.Errorf("create trusted transport key object: %w", err)
	}
	return nil
}
