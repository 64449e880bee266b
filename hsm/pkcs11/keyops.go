package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/keywrap"
)

// Protection level HSM: a customer key version is unwrapped into the token
// as a sensitive, non-extractable session object and every operation with
// it runs there (keyops_crypto.go). DESIGN.md "KeyOps" says why the objects
// live on the login session and how handles go stale.

var _ hsm.KeyOps = (*HSM)(nil)

// keyHandle is this backend's hsm.KeyHandle: a session object in the
// token, valid for the session generation it was made in.
type keyHandle struct {
	h      *HSM
	kind   hsm.KeyKind
	obj    pkcs11.ObjectHandle
	gen    uint64        // h.gen at import; any other value means the object is gone
	mechs  map[uint]bool // the kind's mechanisms the token offers, read at import
	modLen int           // RSA: modulus length in bytes

	// Operations hold mu shared and Destroy holds it exclusively, so no
	// operation can run on an object number after C_DestroyObject.
	mu   sync.RWMutex
	gone bool
}

// Kind is the kind the handle was imported as.
func (k *keyHandle) Kind() hsm.KeyKind { return k.kind }

// kindSpec is how a KeyKind is unwrapped into the token.
type kindSpec struct {
	name    string
	class   uint
	keyType uint
	size    int    // secret kinds: the material's length; 0 for private keys
	usage   []uint // usage attributes set true; every other one is false
	mechs   []uint // mechanisms its operations may use
	need    uint   // a mechanism without which the kind is useless; 0: checked per operation
}

var kindSpecs = map[hsm.KeyKind]kindSpec{
	hsm.KindAES256: {"AES-256", pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES, 32,
		[]uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT}, []uint{pkcs11.CKM_AES_GCM}, pkcs11.CKM_AES_GCM},
	hsm.KindHMACSHA256: {"HMAC-SHA-256", pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET, 32,
		[]uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY}, []uint{pkcs11.CKM_SHA256_HMAC}, pkcs11.CKM_SHA256_HMAC},
	hsm.KindHMACSHA384: {"HMAC-SHA-384", pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET, 48,
		[]uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY}, []uint{pkcs11.CKM_SHA384_HMAC}, pkcs11.CKM_SHA384_HMAC},
	hsm.KindHMACSHA512: {"HMAC-SHA-512", pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET, 64,
		[]uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY}, []uint{pkcs11.CKM_SHA512_HMAC}, pkcs11.CKM_SHA512_HMAC},
	hsm.KindRSAPrivate: {"RSA private", pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA, 0,
		[]uint{pkcs11.CKA_SIGN, pkcs11.CKA_DECRYPT},
		[]uint{pkcs11.CKM_RSA_PKCS, pkcs11.CKM_RSA_PKCS_PSS, pkcs11.CKM_RSA_PKCS_OAEP}, 0},
	hsm.KindECDSAPrivate: {"EC private", pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC, 0,
		[]uint{pkcs11.CKA_SIGN}, []uint{pkcs11.CKM_ECDSA}, pkcs11.CKM_ECDSA},
}

func kindName(k hsm.KeyKind) string {
	if s, ok := kindSpecs[k]; ok {
		return s.name
	}
	return fmt.Sprintf("unknown kind %d", int(k))
}

// usageAttrs are the usage attributes a class may carry; the template sets
// each one explicitly, so no token default grants a use we did not ask for.
var usageAttrs = map[uint][]uint{
	pkcs11.CKO_SECRET_KEY: {pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY,
		pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE},
	pkcs11.CKO_PRIVATE_KEY: {pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_SIGN_RECOVER,
		pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE},
}

// keyTemplate is a session object that never leaves the token in the
// clear: sensitive, not extractable (so not even wrappable), private, and
// usable only as usage says.
func keyTemplate(class, keyType uint, usage []uint) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
	}
	for _, a := range usageAttrs[class] {
		on := false
		for _, u := range usage {
			on = on || u == a
		}
		t = append(t, pkcs11.NewAttribute(a, on))
	}
	return t
}

// EC curves a KindECDSAPrivate key may be on, as the DER OIDs tokens keep
// in CKA_EC_PARAMS.
var ecCurves = map[string]string{
	"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07": "P-256",
	"\x06\x05\x2b\x81\x04\x00\x22":             "P-384",
	"\x06\x05\x2b\x81\x04\x00\x23":             "P-521",
}

// minRSABytes is the smallest RSA modulus accepted (2048 bits).
const minRSABytes = 256

// ImportWrapped unwraps a blob made by Wrap under DK version dkVersion into
// the token as a sensitive, non-extractable session object of kind. A blob
// that fails its integrity check gives hsm.ErrUnwrap; a sound blob whose
// material is not of kind gives hsm.ErrInvalidInput.
func (h *HSM) ImportWrapped(ctx context.Context, dkVersion uint32, wrapped []byte, kind hsm.KeyKind) (hsm.KeyHandle, error) {
	var k *keyHandle
	err := h.withSession(ctx, fmt.Sprintf("import %s key under dk v%d", kindName(kind), dkVersion), func(s pkcs11.SessionHandle) error {
		spec, ok := kindSpecs[kind]
		if !ok {
			return fmt.Errorf("%s: %w", kindName(kind), hsm.ErrInvalidInput)
		}
		// No wrap has another length; miekg/pkcs11 also indexes wrapped[0].
		if len(wrapped) < 16 || len(wrapped)%8 != 0 {
			return hsm.ErrUnwrap
		}
		login, slot, gen, err := h.loginSession()
		if err != nil {
			return err
		}
		mechs, err := kindMechanisms(h.p, slot, spec)
		if err != nil {
			return err
		}
		if spec.need != 0 && !mechs[spec.need] {
			return fmt.Errorf("%w: token %q lacks mechanism %s, which %s keys need", hsm.ErrUnsupported, h.cfg.TokenLabel, keyMechName(spec.need), spec.name)
		}
		return h.withDK(s, dkVersion, func(kek pkcs11.ObjectHandle) error {
			obj, err := h.importUnder(s, login, kek, wrapped, spec)
			if err != nil {
				return err
			}
			k = &keyHandle{h: h, kind: kind, obj: obj, gen: gen, mechs: mechs}
			if err := h.checkImported(s, k); err != nil {
				_ = h.p.DestroyObject(s, obj)
				return err
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// importUnder unwraps twice: first into a probe object with no use at all,
// which proves the blob sound (so a failure of the second unwrap is the
// material's fault, not the blob's, whatever code the token picks), then
// into the real object. Both live on the login session: a session object
// dies with the session that made it, and the login session lives exactly
// as long as the session generation the handle records.
func (h *HSM) importUnder(s, login pkcs11.SessionHandle, kek pkcs11.ObjectHandle, wrapped []byte, spec kindSpec) (pkcs11.ObjectHandle, error) {
	probe, err := h.p.UnwrapKey(login, kwp(), kek, wrapped, keyTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET, nil))
	if integrity(err) {
		return 0, hsm.ErrUnwrap
	}
	if err != nil {
		return 0, fmt.Errorf("C_UnwrapKey: %w", err)
	}
	_ = h.p.DestroyObject(s, probe)
	// SoftHSM 2.6 leaves CKA_VALUE_LEN at 0 after an unwrap (and refuses it
	// in the template), so a secret's length is checked on the blob: RFC
	// 5649 pads to 8 bytes, so this pins it to size-7..size.
	if spec.size > 0 && len(wrapped) != keywrap.WrappedLen(spec.size) {
		return 0, fmt.Errorf("a %d-byte blob cannot hold a %d-byte %s key: %w", len(wrapped), spec.size, spec.name, hsm.ErrInvalidInput)
	}
	obj, err := h.p.UnwrapKey(login, kwp(), kek, wrapped, keyTemplate(spec.class, spec.keyType, spec.usage))
	switch {
	case err == nil:
		return obj, nil
	case deviceFault(err), handleGone(err):
		return 0, fmt.Errorf("C_UnwrapKey: %w", err)
	case spec.size == 0:
		return 0, fmt.Errorf("material is not a PKCS#8 %s key (token says %v): %w", spec.name, err, hsm.ErrInvalidInput)
	default:
		return 0, fmt.Errorf("token refuses the material as %s (%v): %w", spec.name, err, hsm.ErrInvalidInput)
	}
}

// checkImported reads what the token made of a private key: the curve
// must be one Meridian offers, the RSA modulus at least 2048 bits.
func (h *HSM) checkImported(s pkcs11.SessionHandle, k *keyHandle) error {
	switch k.kind {
	case hsm.KindECDSAPrivate:
		a, err := h.p.GetAttributeValue(s, k.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil)})
		if err != nil {
			return fmt.Errorf("read CKA_EC_PARAMS: %w", err)
		}
		if _, ok := ecCurves[string(a[0].Value)]; !ok {
			return fmt.Errorf("EC key on a curve other than P-256, P-384, P-521: %w", hsm.ErrInvalidInput)
		}
	case hsm.KindRSAPrivate:
		a, err := h.p.GetAttributeValue(s, k.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil)})
		if err != nil {
			return fmt.Errorf("read CKA_MODULUS: %w", err)
		}
		m := a[0].Value
		for len(m) > 0 && m[0] == 0 {
			m = m[1:]
		}
		if len(m) < minRSABytes {
			return fmt.Errorf("RSA modulus of %d bits; at least 2048 needed: %w", len(m)*8, hsm.ErrInvalidInput)
		}
		k.modLen = len(m)
	}
	return nil
}

// Destroy removes the key object; later use of h gives hsm.ErrHandleInvalid.
func (h *HSM) Destroy(ctx context.Context, kh hsm.KeyHandle) error {
	k, err := h.ownKey(kh)
	if err != nil {
		return fmt.Errorf("pkcs11: destroy key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gone {
		return fmt.Errorf("pkcs11: destroy %s key: %w", kindName(k.kind), hsm.ErrHandleInvalid)
	}
	err = h.withSession(ctx, "destroy "+kindName(k.kind)+" key", func(s pkcs11.SessionHandle) error {
		if h.currentGen() != k.gen {
			return errStale
		}
		return keyErr("C_DestroyObject", h.p.DestroyObject(s, k.obj))
	})
	if err == nil || errors.Is(err, hsm.ErrHandleInvalid) {
		k.gone = true
	}
	return err
}

var errStale = fmt.Errorf("key imported before the token reconnected: %w", hsm.ErrHandleInvalid)

// ownKey checks that kh is a live-or-dead handle of this HSM: a nil handle
// or another HSM's handle is a caller bug, and another token's object
// number must never be used here.
func (h *HSM) ownKey(kh hsm.KeyHandle) (*keyHandle, error) {
	k, ok := kh.(*keyHandle)
	if !ok || k == nil {
		return nil, fmt.Errorf("handle %T is not this backend's: %w", kh, hsm.ErrInvalidInput)
	}
	if k.h != h {
		return nil, fmt.Errorf("handle belongs to another HSM: %w", hsm.ErrInvalidInput)
	}
	return k, nil
}

// useKey runs fn with the key behind kh on a borrowed session, after
// checking that the handle is this HSM's, of a kind allowed, still alive,
// and from the current session generation, and that the token offers mech.
func (h *HSM) useKey(ctx context.Context, op string, kh hsm.KeyHandle, allowed func(hsm.KeyKind) bool, mech uint, fn func(s pkcs11.SessionHandle, k *keyHandle) error) error {
	k, err := h.ownKey(kh)
	if err != nil {
		return fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	if !allowed(k.kind) {
		return fmt.Errorf("pkcs11: %s: not possible with a %s key: %w", op, kindName(k.kind), hsm.ErrInvalidInput)
	}
	if mech != 0 && !k.mechs[mech] {
		return fmt.Errorf("pkcs11: %s: %w: token %q lacks mechanism %s", op, hsm.ErrUnsupported, h.cfg.TokenLabel, keyMechName(mech))
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.gone {
		return fmt.Errorf("pkcs11: %s: key destroyed: %w", op, hsm.ErrHandleInvalid)
	}
	return h.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		if h.currentGen() != k.gen {
			return errStale
		}
		return fn(s, k)
	})
}

func (h *HSM) currentGen() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// loginSession returns the long-lived logged-in session, the slot and the
// session generation they belong to.
func (h *HSM) loginSession() (pkcs11.SessionHandle, uint, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down != nil || h.login == 0 {
		return 0, 0, 0, fmt.Errorf("%w: token %q is reconnecting", hsm.ErrUnavailable, h.cfg.TokenLabel)
	}
	return h.login, h.slot, h.gen, nil
}

// kindMechanisms reads which of the kind's mechanisms the token offers.
func kindMechanisms(p p11, slot uint, spec kindSpec) (map[uint]bool, error) {
	all, err := mechanisms(p, slot)
	if err != nil {
		return nil, err
	}
	m := make(map[uint]bool, len(spec.mechs))
	for _, x := range spec.mechs {
		m[x] = all[x]
	}
	return m, nil
}

// deviceFault reports errors that mean the session or device failed, as
// opposed to the input: lost() less CKR_GENERAL_ERROR and
// CKR_FUNCTION_FAILED, which SoftHSM also gives for a bad tag, a bad OAEP
// block or a malformed PKCS#8 key. A bad ciphertext must not take the
// node down, so for operations on caller input these two mean bad input.
func deviceFault(err error) bool {
	return lost(err) && !isCode(err, pkcs11.CKR_GENERAL_ERROR) && !isCode(err, pkcs11.CKR_FUNCTION_FAILED)
}

// objectGone reports codes meaning the key object no longer exists.
func objectGone(err error) bool {
	return isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isCode(err, pkcs11.CKR_KEY_HANDLE_INVALID)
}

// keyErr labels a token error from an operation on an imported key; a
// vanished object becomes hsm.ErrHandleInvalid.
func keyErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case objectGone(err):
		return fmt.Errorf("%s: %w: %w", what, hsm.ErrHandleInvalid, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// inputErr is keyErr for calls that process caller-supplied ciphertext:
// anything but a device fault or a vanished object is the input's fault,
// reported as hsm.ErrUnwrap with no detail (no padding or tag oracle).
func inputErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case objectGone(err), deviceFault(err):
		return keyErr(what, err)
	default:
		return hsm.ErrUnwrap
	}
}

// keyMechNames names the mechanisms KeyOps asks for.
var keyMechNames = map[uint]string{
	pkcs11.CKM_AES_GCM:       "CKM_AES_GCM",
	pkcs11.CKM_SHA256_HMAC:   "CKM_SHA256_HMAC",
	pkcs11.CKM_SHA384_HMAC:   "CKM_SHA384_HMAC",
	pkcs11.CKM_SHA512_HMAC:   "CKM_SHA512_HMAC",
	pkcs11.CKM_RSA_PKCS:      "CKM_RSA_PKCS",
	pkcs11.CKM_RSA_PKCS_PSS:  "CKM_RSA_PKCS_PSS",
	pkcs11.CKM_RSA_PKCS_OAEP: "CKM_RSA_PKCS_OAEP",
	pkcs11.CKM_ECDSA:         "CKM_ECDSA",
}

func keyMechName(m uint) string {
	if n, ok := keyMechNames[m]; ok {
		return fmt.Sprintf("%s (0x%X)", n, m)
	}
	return mechName(m)
}
