package pkcs11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

// Mechanism is one PKCS#11 mechanism Meridian uses, and whether the token
// offers it: what `meridian operator hsm status` prints.
type Mechanism = hsm.Mechanism

// usedMechanisms lists every mechanism this backend calls, in the order
// status output shows them.
var usedMechanisms = []Mechanism{
	{Name: "CKM_AES_KEY_GEN", Code: pkcs11.CKM_AES_KEY_GEN, Required: true, Use: "domain key generation"},
	{Name: "CKM_AES_KEY_WRAP_PAD", Code: pkcs11.CKM_AES_KEY_WRAP_PAD, Required: true, Use: "wrapping key material under the domain key (RFC 5649)"},
	{Name: "CKM_AES_CBC", Code: pkcs11.CKM_AES_CBC, Use: "RFC 5649 fallback on tokens that pad key wrap input"},
	{Name: "CKM_RSA_PKCS_KEY_PAIR_GEN", Code: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, Use: "enrolment transport key pair"},
	{Name: "CKM_RSA_PKCS_OAEP", Code: pkcs11.CKM_RSA_PKCS_OAEP, Use: "enrolment (domain key transport) and HSM-level RSA decryption"},
	{Name: "CKM_AES_GCM", Code: pkcs11.CKM_AES_GCM, Use: "HSM-level AES-256-GCM keys"},
	{Name: "CKM_SHA256_HMAC", Code: pkcs11.CKM_SHA256_HMAC, Use: "HSM-level HMAC_256 keys"},
	{Name: "CKM_SHA384_HMAC", Code: pkcs11.CKM_SHA384_HMAC, Use: "HSM-level HMAC_384 keys"},
	{Name: "CKM_SHA512_HMAC", Code: pkcs11.CKM_SHA512_HMAC, Use: "HSM-level HMAC_512 keys"},
	{Name: "CKM_RSA_PKCS", Code: pkcs11.CKM_RSA_PKCS, Use: "HSM-level RSA PKCS#1 v1.5 signing"},
	{Name: "CKM_RSA_PKCS_PSS", Code: pkcs11.CKM_RSA_PKCS_PSS, Use: "HSM-level RSA-PSS signing"},
	{Name: "CKM_ECDSA", Code: pkcs11.CKM_ECDSA, Use: "HSM-level ECDSA signing"},
}

// Mechanisms reports, for every mechanism Meridian uses, whether this
// HSM's token offers it (hsm.Token). It reads the token's mechanism list
// afresh, so a device error shows here as hsm.ErrUnavailable like any
// other call.
func (h *HSM) Mechanisms(ctx context.Context) ([]Mechanism, error) {
	var set map[uint]bool
	err := h.withSession(ctx, "list mechanisms", func(pkcs11.SessionHandle) error {
		h.mu.Lock()
		slot := h.slot
		h.mu.Unlock()
		var err error
		set, err = mechanisms(h.p, slot)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Mechanism, len(usedMechanisms))
	for i, m := range usedMechanisms {
		m.Present = set[m.Code]
		out[i] = m
	}
	return out, nil
}
