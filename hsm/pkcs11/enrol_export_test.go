package pkcs11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

// TransportAttrs are the transport pair's attributes (test only).
type TransportAttrs struct {
	PrivToken, PrivSensitive, PrivExtractable, PrivUnwrap, PrivDecrypt, PrivSign bool
	PubToken, PubWrap                                                            bool
	PrivValueErr                                                                 error // reading CKA_PRIVATE_EXPONENT
}

// TransportKeyAttributes reads the current pair's attributes; hsm.ErrUnwrap
// when there is no pair.
func (h *HSM) TransportKeyAttributes(ctx context.Context) (TransportAttrs, error) {
	var a TransportAttrs
	t := &h.transport
	t.mu.Lock()
	defer t.mu.Unlock()
	err := h.withSession(ctx, "test transport attrs", func(s pkcs11.SessionHandle) error {
		if !h.transportLive() {
			return hsm.ErrUnwrap
		}
		if err := readBools(h.p, s, t.priv, map[uint]*bool{
			pkcs11.CKA_TOKEN: &a.PrivToken, pkcs11.CKA_SENSITIVE: &a.PrivSensitive, pkcs11.CKA_EXTRACTABLE: &a.PrivExtractable,
			pkcs11.CKA_UNWRAP: &a.PrivUnwrap, pkcs11.CKA_DECRYPT: &a.PrivDecrypt, pkcs11.CKA_SIGN: &a.PrivSign,
		}); err != nil {
			return err
		}
		if err := readBools(h.p, s, t.pub, map[uint]*bool{pkcs11.CKA_TOKEN: &a.PubToken, pkcs11.CKA_WRAP: &a.PubWrap}); err != nil {
			return err
		}
		_, a.PrivValueErr = h.p.GetAttributeValue(s, t.priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, nil)})
		return nil
	})
	return a, err
}

func readBools(p p11, s pkcs11.SessionHandle, o pkcs11.ObjectHandle, dst map[uint]*bool) error {
	for typ, b := range dst {
		attrs, err := p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
		if err != nil {
			return err
		}
		if len(attrs[0].Value) != 1 {
			return fmt.Errorf("attribute 0x%X has %d bytes", typ, len(attrs[0].Value))
		}
		*b = attrs[0].Value[0] != 0
	}
	return nil
}
