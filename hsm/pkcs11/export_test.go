package pkcs11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// P11 lets external tests wrap the module to inject faults.
type P11 = p11

// OpenWrapped opens with the module wrapped by wrap.
func OpenWrapped(ctx context.Context, cfg Config, wrap func(P11) P11) (*HSM, error) {
	return open(ctx, cfg, hooks{wrap: wrap})
}

// ModuleRefs is how many HSMs share the module at path.
func ModuleRefs(path string) int { return moduleRefs(path) }

// PadsKWP reports whether the start-up probe found the SoftHSM quirk.
func (h *HSM) PadsKWP() bool { return h.quirk }

// testKey creates a session AES key with a known value (test only).
func (h *HSM) testKey(s pkcs11.SessionHandle, key []byte) (pkcs11.ObjectHandle, error) {
	return h.p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
	})
}

// WrapWithKey wraps material exactly as Wrap does, under a test key of
// known value instead of the DK, so keywrap can check the blob.
func (h *HSM) WrapWithKey(ctx context.Context, key, material []byte) ([]byte, error) {
	var blob []byte
	err := h.withSession(ctx, "test wrap", func(s pkcs11.SessionHandle) error {
		k, err := h.testKey(s, key)
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(s, k)
		blob, err = h.wrapUnder(ctx, s, k, material)
		return err
	})
	return blob, err
}

// UnwrapWithKey unwraps exactly as Unwrap does, under a test key.
func (h *HSM) UnwrapWithKey(ctx context.Context, key, blob []byte) ([]byte, error) {
	var pt []byte
	err := h.withSession(ctx, "test unwrap", func(s pkcs11.SessionHandle) error {
		k, err := h.testKey(s, key)
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(s, k)
		pt, err = h.unwrapUnder(s, k, blob)
		return err
	})
	return pt, err
}

// NativeWrapWithKey wraps with the token's own KWP, skipping the fallback.
func (h *HSM) NativeWrapWithKey(ctx context.Context, key, material []byte) ([]byte, error) {
	var blob []byte
	err := h.withSession(ctx, "test native wrap", func(s pkcs11.SessionHandle) error {
		k, err := h.testKey(s, key)
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(s, k)
		obj, err := h.p.CreateObject(s, materialTemplate(material))
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(s, obj)
		blob, err = h.p.WrapKey(s, kwp(), k, obj)
		return err
	})
	return blob, err
}

// DKPolicy reads DK version v's attributes and tries what its policy must
// refuse: reading its value, and wrapping it under a key the user made.
type DKPolicy struct {
	Sensitive, Extractable, WrapWithTrusted, Encrypt, Decrypt, Wrap, Unwrap, Token bool
	ValueErr, UntrustedWrapErr                                                     error
}

// DomainKeyPolicy inspects DK version v (test only).
func (h *HSM) DomainKeyPolicy(ctx context.Context, v uint32) (DKPolicy, error) {
	var p DKPolicy
	err := h.withSession(ctx, "test dk policy", func(s pkcs11.SessionHandle) error {
		return h.withDK(s, v, func(dk pkcs11.ObjectHandle) error {
			types := []uint{pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_WRAP_WITH_TRUSTED,
				pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_TOKEN}
			var q []*pkcs11.Attribute
			for _, t := range types {
				q = append(q, pkcs11.NewAttribute(t, nil))
			}
			attrs, err := h.p.GetAttributeValue(s, dk, q)
			if err != nil {
				return err
			}
			dst := []*bool{&p.Sensitive, &p.Extractable, &p.WrapWithTrusted, &p.Encrypt, &p.Decrypt, &p.Wrap, &p.Unwrap, &p.Token}
			for i, a := range attrs {
				if len(a.Value) != 1 {
					return fmt.Errorf("attribute 0x%X has %d bytes", a.Type, len(a.Value))
				}
				*dst[i] = a.Value[0] != 0
			}
			_, p.ValueErr = h.p.GetAttributeValue(s, dk, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			k, err := h.testKey(s, make([]byte, 32))
			if err != nil {
				return err
			}
			defer h.p.DestroyObject(s, k)
			_, p.UntrustedWrapErr = h.p.WrapKey(s, kwp(), k, dk)
			return nil
		})
	})
	return p, err
}

// DirectGCM runs n AES-256-GCM C_Encrypt calls of msg on one session with
// a session key: the bare token's speed, for comparison with Meridian's
// HSM-level encrypt.
func (h *HSM) DirectGCM(ctx context.Context, n int, msg []byte, before func()) error {
	return h.withSession(ctx, "direct gcm", func(s pkcs11.SessionHandle) error {
		k, err := h.testKey(s, make([]byte, 32))
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(s, k)
		iv := make([]byte, 12)
		before()
		for i := range n {
			iv[0], iv[1], iv[2], iv[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			params := pkcs11.NewGCMParams(iv, nil, 128)
			if err := h.p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k); err != nil {
				params.Free()
				return err
			}
			_, err := h.p.Encrypt(s, msg)
			params.Free()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
