package pkcs11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

// KeyObjectPolicy is what the token says about an imported key object.
type KeyObjectPolicy struct {
	Token, Private, Sensitive, Extractable bool
	Usage                                  map[string]bool // attribute name -> value
	ValueErr                               error           // reading CKA_VALUE (secret) or CKA_PRIVATE_EXPONENT / CKA_VALUE (private)
}

var usageNames = map[uint]string{
	pkcs11.CKA_ENCRYPT: "ENCRYPT", pkcs11.CKA_DECRYPT: "DECRYPT", pkcs11.CKA_SIGN: "SIGN", pkcs11.CKA_VERIFY: "VERIFY",
	pkcs11.CKA_WRAP: "WRAP", pkcs11.CKA_UNWRAP: "UNWRAP", pkcs11.CKA_DERIVE: "DERIVE", pkcs11.CKA_SIGN_RECOVER: "SIGN_RECOVER",
}

// KeyPolicy reads an imported key object's attributes (test only).
func (h *HSM) KeyPolicy(ctx context.Context, kh hsm.KeyHandle) (KeyObjectPolicy, error) {
	p := KeyObjectPolicy{Usage: map[string]bool{}}
	err := h.useKey(ctx, "test key policy", kh, func(hsm.KeyKind) bool { return true }, 0, func(s pkcs11.SessionHandle, k *keyHandle) error {
		spec := kindSpecs[k.kind]
		types := []uint{pkcs11.CKA_TOKEN, pkcs11.CKA_PRIVATE, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE}
		types = append(types, usageAttrs[spec.class]...)
		var q []*pkcs11.Attribute
		for _, t := range types {
			q = append(q, pkcs11.NewAttribute(t, nil))
		}
		attrs, err := h.p.GetAttributeValue(s, k.obj, q)
		if err != nil {
			return err
		}
		for i, a := range attrs {
			if len(a.Value) != 1 {
				return fmt.Errorf("attribute 0x%X has %d bytes", a.Type, len(a.Value))
			}
			v := a.Value[0] != 0
			switch i {
			case 0:
				p.Token = v
			case 1:
				p.Private = v
			case 2:
				p.Sensitive = v
			case 3:
				p.Extractable = v
			default:
				p.Usage[usageNames[a.Type]] = v
			}
		}
		secret := uint(pkcs11.CKA_VALUE)
		if k.kind == hsm.KindRSAPrivate {
			secret = pkcs11.CKA_PRIVATE_EXPONENT
		}
		_, p.ValueErr = h.p.GetAttributeValue(s, k.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(secret, nil)})
		return nil
	})
	return p, err
}

// DirectGCMKey runs n bare C_EncryptInit+C_Encrypt AES-256-GCM calls of
// msg on one session with the object behind kh: the token's own speed
// with the very key KeyOps uses, for the benchmark's ratio.
func (h *HSM) DirectGCMKey(ctx context.Context, kh hsm.KeyHandle, n int, msg []byte) error {
	k, err := h.ownKey(kh)
	if err != nil {
		return err
	}
	return h.withSession(ctx, "direct gcm", func(s pkcs11.SessionHandle) error {
		iv := make([]byte, 12)
		for i := range n {
			iv[0], iv[1], iv[2], iv[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			params := pkcs11.NewGCMParams(iv, nil, 128)
			if err := h.p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k.obj); err != nil {
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
