package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/keywrap"
)

// kwp is RFC 5649 as SoftHSM 2.6 numbers it (see CKM_AES_KEY_WRAP_KWP).
func kwp() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
}

// materialTemplate makes a session object holding arbitrary bytes, so
// C_WrapKey (which wraps objects, not buffers) can wrap them.
func materialTemplate(material []byte) []*pkcs11.Attribute {
	return append(secretTemplate(), pkcs11.NewAttribute(pkcs11.CKA_VALUE, material))
}

// secretTemplate is a readable generic session secret: the shape of an
// object holding material on its way in or out (SOFTWARE protection level:
// the material lives in process memory anyway).
func secretTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
	}
}

// handleGone reports errors meaning a cached DK handle went stale.
func handleGone(err error) bool {
	return isCode(err, pkcs11.CKR_KEY_HANDLE_INVALID) || isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) ||
		isCode(err, pkcs11.CKR_WRAPPING_KEY_HANDLE_INVALID) || isCode(err, pkcs11.CKR_UNWRAPPING_KEY_HANDLE_INVALID)
}

// withDK runs fn with DK version v's handle, looking it up again once if
// the cached handle went stale.
func (h *HSM) withDK(s pkcs11.SessionHandle, v uint32, fn func(kek pkcs11.ObjectHandle) error) error {
	for try := 0; ; try++ {
		kek, err := h.dkHandle(s, v)
		if err != nil {
			return err
		}
		err = fn(kek)
		if try == 0 && handleGone(err) {
			h.forgetDK(v)
			continue
		}
		return err
	}
}

// Wrap seals material under DK version dkVersion with RFC 5649, inside the
// token.
func (h *HSM) Wrap(ctx context.Context, dkVersion uint32, material []byte) ([]byte, error) {
	var blob []byte
	err := h.withSession(ctx, fmt.Sprintf("wrap under dk v%d", dkVersion), func(s pkcs11.SessionHandle) error {
		if len(material) == 0 || uint64(len(material)) > keywrap.MaxPlaintext {
			return fmt.Errorf("%d bytes of material: %w", len(material), hsm.ErrInvalidInput)
		}
		return h.withDK(s, dkVersion, func(kek pkcs11.ObjectHandle) error {
			var err error
			blob, err = h.wrapUnder(ctx, s, kek, material)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return blob, nil
}

// wrapUnder wraps material under the AES key kek. Tests call it with a
// known test key to compare the token's blobs with package keywrap's.
func (h *HSM) wrapUnder(ctx context.Context, s pkcs11.SessionHandle, kek pkcs11.ObjectHandle, material []byte) ([]byte, error) {
	if h.quirk && len(material)%8 != 0 {
		return h.wrapFallback(ctx, s, kek, material)
	}
	obj, err := h.p.CreateObject(s, materialTemplate(material))
	if err != nil {
		return nil, fmt.Errorf("create material object: %w", err)
	}
	defer func() { _ = h.p.DestroyObject(s, obj) }()
	blob, err := h.p.WrapKey(s, kwp(), kek, obj)
	if err != nil {
		return nil, fmt.Errorf("C_WrapKey: %w", err)
	}
	return blob, nil
}

// Unwrap reverses Wrap into process memory (SOFTWARE protection level):
// the token unwraps into a readable session object, whose value is read
// and which is destroyed at once.
func (h *HSM) Unwrap(ctx context.Context, dkVersion uint32, wrapped []byte) ([]byte, error) {
	var pt []byte
	err := h.withSession(ctx, fmt.Sprintf("unwrap under dk v%d", dkVersion), func(s pkcs11.SessionHandle) error {
		return h.withDK(s, dkVersion, func(kek pkcs11.ObjectHandle) error {
			var err error
			pt, err = h.unwrapUnder(s, kek, wrapped)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

func (h *HSM) unwrapUnder(s pkcs11.SessionHandle, kek pkcs11.ObjectHandle, wrapped []byte) ([]byte, error) {
	// No wrap has another length; miekg/pkcs11 also indexes wrapped[0].
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, hsm.ErrUnwrap
	}
	obj, err := h.p.UnwrapKey(s, kwp(), kek, wrapped, secretTemplate())
	if integrity(err) {
		return nil, hsm.ErrUnwrap
	}
	if err != nil {
		return nil, fmt.Errorf("C_UnwrapKey: %w", err)
	}
	defer func() { _ = h.p.DestroyObject(s, obj) }()
	attrs, err := h.p.GetAttributeValue(s, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("read unwrapped value: %w", err)
	}
	return attrs[0].Value, nil
}

// integrity reports the codes a token gives for a blob that fails RFC
// 5649's checks. SoftHSM says CKR_GENERAL_ERROR, which elsewhere means a
// sick device; for an unwrap it is the blob's fault, and treating it as a
// device error would let anyone with a bad blob take the node down.
func integrity(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch uint(e) {
	case pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_GENERAL_ERROR:
		return true
	}
	return false
}

// maxRandomChunk bounds one C_GenerateRandom call.
const maxRandomChunk = 64 << 10

// Random returns n bytes from the token's generator.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	out := make([]byte, 0, max(n, 0))
	err := h.withSession(ctx, "random", func(s pkcs11.SessionHandle) error {
		if n < 0 {
			return fmt.Errorf("%d bytes: %w", n, hsm.ErrInvalidInput)
		}
		for len(out) < n {
			b, err := h.p.GenerateRandom(s, min(n-len(out), maxRandomChunk))
			if err != nil {
				return err
			}
			out = append(out, b...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// probeKWP finds out whether the token's RFC 5649 wrap is faithful.
// SoftHSM 2.6.1 zero-pads the key value to a multiple of 8 bytes before
// wrapping, so the blob's length field says 16 for a 9-byte value and
// unwraps to 16 bytes, everywhere. The probe wraps 9 bytes under a
// throwaway session key and unwraps them again: 16 bytes back means the
// token pads, and wrapUnder takes the fallback for unaligned material.
func (h *HSM) probeKWP(ctx context.Context) (quirk bool, err error) {
	err = h.withSession(ctx, "probe key wrap", func(s pkcs11.SessionHandle) error {
		kek, err := h.p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		})
		if err != nil {
			return fmt.Errorf("generate probe key: %w", err)
		}
		defer func() { _ = h.p.DestroyObject(s, kek) }()
		probe := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
		h.quirk = false // the native path, whatever a previous probe found
		blob, err := h.wrapUnder(ctx, s, kek, probe)
		if err != nil {
			return err
		}
		got, err := h.unwrapUnder(s, kek, blob)
		if err != nil {
			return err
		}
		switch {
		case bytes.Equal(got, probe):
			quirk = false
		case len(got) == 16 && bytes.Equal(got[:9], probe):
			quirk = true
		default:
			return fmt.Errorf("token %q: a 9-byte probe came back as %d different bytes", h.cfg.TokenLabel, len(got))
		}
		return nil
	})
	return quirk, err
}
