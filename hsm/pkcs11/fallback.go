package pkcs11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm/keywrap"
)

// wrapFallback computes RFC 5649 for material the token would pad wrongly
// (see probeKWP). keywrap runs the algorithm; every AES block operation
// under the DK runs inside the token, so the DK still never leaves it.
//
// The block operation is C_WrapKey with CKM_AES_CBC of a 16-byte all-zero
// session object under the DK, with the input block as the IV: CBC of one
// block is AES(IV xor 0) = AES(input). It needs only the DK's CKA_WRAP, not
// CKA_ENCRYPT. It gives a PIN holder an AES-encrypt oracle under the DK,
// which grants nothing new: the same PIN already unwraps any blob (C_UnwrapKey
// into a readable object) and wraps any material; it cannot decrypt and
// cannot reveal the DK. The cost is 6 x ceil(n/8) token calls per wrap, paid
// only by unaligned material (private keys), which is wrapped once per
// key version.
func (h *HSM) wrapFallback(ctx context.Context, s pkcs11.SessionHandle, kek pkcs11.ObjectHandle, material []byte) ([]byte, error) {
	zero, err := h.p.CreateObject(s, materialTemplate(make([]byte, 16)))
	if err != nil {
		return nil, fmt.Errorf("create zero block object: %w", err)
	}
	defer func() { _ = h.p.DestroyObject(s, zero) }()
	// A session copy of the DK (same sticky attributes, gone when this
	// call ends) makes each block call about 3x cheaper on SoftHSM, which
	// re-reads a token object's file on every use. Tokens that refuse to
	// copy it use the token object itself.
	if work, err := h.p.CopyObject(s, kek, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "meridian-dk-work"), // never matches a DK label
	}); err == nil {
		defer func() { _ = h.p.DestroyObject(s, work) }()
		kek = work
	}
	b := &tokenBlock{ctx: ctx, p: h.p, s: s, kek: kek, zero: zero}
	blob, err := keywrap.Wrap(b, material)
	if b.err != nil {
		return nil, fmt.Errorf("rfc 5649 fallback block: %w", b.err)
	}
	if err != nil {
		return nil, fmt.Errorf("rfc 5649 fallback: %w", err)
	}
	return blob, nil
}

// tokenBlock is a cipher.Block whose Encrypt runs in the token. A
// cipher.Block cannot return errors, so the first one is kept in err and
// every later call does nothing; the caller checks err.
type tokenBlock struct {
	ctx       context.Context // checked between block operations
	p         p11
	s         pkcs11.SessionHandle
	kek, zero pkcs11.ObjectHandle
	err       error
}

func (b *tokenBlock) BlockSize() int { return 16 }

func (b *tokenBlock) Encrypt(dst, src []byte) {
	if b.err != nil {
		return
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return
	}
	iv := make([]byte, 16)
	copy(iv, src[:16])
	out, err := b.p.WrapKey(b.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC, iv)}, b.kek, b.zero)
	clear(iv)
	if err != nil {
		b.err = err
		return
	}
	if len(out) != 16 {
		b.err = fmt.Errorf("CKM_AES_CBC wrap of one block gave %d bytes", len(out))
		return
	}
	copy(dst, out)
}

// Decrypt is never called: wrapping only encrypts.
func (b *tokenBlock) Decrypt(dst, src []byte) {
	if b.err == nil {
		b.err = fmt.Errorf("tokenBlock cannot decrypt")
	}
}
