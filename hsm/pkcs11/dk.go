package pkcs11

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
)

// dkTemplate is the DK's attribute policy (DESIGN.md says why):
// sensitive, so its value never leaves the token in the clear;
// extractable, so enrolment can wrap it (RSA-OAEP) to a joining node's
// transport key inside the token - with trusted set (Config.
// RequireTrustedWrap), only to a key the token's security officer marked
// CKA_TRUSTED; usable for wrap and unwrap only. SoftHSM 2.6 makes
// CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED sticky: a user cannot clear them,
// by SetAttributeValue or by CopyObject.
func dkTemplate(label string, trusted bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, trusted),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
	}
}

// DomainKeyLabel is the CKA_LABEL of DK version v.
func (h *HSM) DomainKeyLabel(v uint32) string {
	return h.cfg.DomainKeyLabelPrefix + strconv.FormatUint(uint64(v), 10)
}

// parseVersion reads the version out of a DK label, refusing anything but
// the prefix and a canonical decimal 1..2^32-1.
func (h *HSM) parseVersion(label string) (uint32, bool) {
	digits, ok := strings.CutPrefix(label, h.cfg.DomainKeyLabelPrefix)
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// DomainKeyVersions lists the DK versions on the token, ascending. The
// token is read once per session generation (enumerating every AES token
// key costs ~0.3 ms on SoftHSM, as PKCS#11 cannot search by label prefix)
// and again after this HSM adds a version or reconnects; a DK added to the
// token by another process shows after the next reconnect.
func (h *HSM) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	var vs []uint32
	err := h.withSession(ctx, "domain key versions", func(s pkcs11.SessionHandle) error {
		h.mu.Lock()
		vs = slices.Clone(h.vers)
		gen := h.gen
		h.mu.Unlock()
		if vs != nil {
			return nil
		}
		var err error
		if vs, err = h.versions(s); err != nil {
			return err
		}
		h.mu.Lock()
		if gen == h.gen {
			h.vers = slices.Clone(vs)
		}
		h.mu.Unlock()
		return nil
	})
	return vs, err
}

// forgetVersions makes the next DomainKeyVersions read the token: call it
// after adding or removing a DK object.
func (h *HSM) forgetVersions() {
	h.mu.Lock()
	h.vers = nil
	h.mu.Unlock()
}

func (h *HSM) versions(s pkcs11.SessionHandle) ([]uint32, error) {
	objs, err := h.find(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	}, 0)
	if err != nil {
		return nil, err
	}
	vs := []uint32{}
	for _, o := range objs {
		attrs, err := h.p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil {
			return nil, fmt.Errorf("read label of object %d: %w", o, err)
		}
		if v, ok := h.parseVersion(string(attrs[0].Value)); ok {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return slices.Compact(vs), nil
}

// find runs one object search; FindObjectsFinal always runs, or the
// session would refuse every later search. limit 0 means all.
func (h *HSM) find(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, limit int) (objs []pkcs11.ObjectHandle, err error) {
	if err := h.p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	defer func() {
		if ferr := h.p.FindObjectsFinal(s); ferr != nil && err == nil {
			err = fmt.Errorf("find objects final: %w", ferr)
		}
	}()
	for {
		batch, _, err := h.p.FindObjects(s, 64)
		if err != nil {
			return nil, fmt.Errorf("find objects: %w", err)
		}
		objs = append(objs, batch...)
		if len(batch) == 0 || (limit > 0 && len(objs) >= limit) {
			return objs, nil
		}
	}
}

// CurrentDomainKeyVersion is the newest DK version on the token.
func (h *HSM) CurrentDomainKeyVersion(ctx context.Context) (uint32, error) {
	vs, err := h.DomainKeyVersions(ctx)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("pkcs11: current domain key version: token %q: %w", h.cfg.TokenLabel, hsm.ErrNoDomainKey)
	}
	return vs[len(vs)-1], nil
}

// dkHandle returns the handle of DK version v, cached for the current
// session generation (handles stay valid while the login session lives).
func (h *HSM) dkHandle(s pkcs11.SessionHandle, v uint32) (pkcs11.ObjectHandle, error) {
	h.mu.Lock()
	o, ok := h.dks[v]
	h.mu.Unlock()
	if ok {
		return o, nil
	}
	objs, err := h.find(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, h.DomainKeyLabel(v)),
	}, 2)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("dk v%d on token %q: %w", v, h.cfg.TokenLabel, hsm.ErrNoDomainKey)
	case 1:
	default:
		return 0, fmt.Errorf("%w: token %q holds several objects labelled %q", hsm.ErrUnavailable, h.cfg.TokenLabel, h.DomainKeyLabel(v))
	}
	h.mu.Lock()
	h.dks[v] = objs[0]
	h.mu.Unlock()
	return objs[0], nil
}

// forgetDK drops a cached handle that the token no longer knows (the
// object was destroyed behind our back).
func (h *HSM) forgetDK(v uint32) {
	h.mu.Lock()
	delete(h.dks, v)
	h.mu.Unlock()
}

// InitDomainKey generates DK version 1 inside the token: the cluster
// bootstrap step. It fails with ErrDomainKeyExists if any DK is there.
func (h *HSM) InitDomainKey(ctx context.Context) (uint32, error) {
	return h.addDomainKey(ctx, "init domain key", true)
}

// RotateDomainKey generates DK version n+1 inside the token and returns
// it; it becomes current. Older versions stay, so their blobs still
// unwrap. hsm.ErrNoDomainKey if the token has no DK yet.
func (h *HSM) RotateDomainKey(ctx context.Context) (uint32, error) {
	return h.addDomainKey(ctx, "rotate domain key", false)
}

func (h *HSM) addDomainKey(ctx context.Context, op string, first bool) (uint32, error) {
	h.dkMu.Lock()
	defer h.dkMu.Unlock()
	defer h.forgetVersions()
	var next uint32
	err := h.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		vs, err := h.versions(s)
		if err != nil {
			return err
		}
		switch {
		case first && len(vs) > 0:
			return fmt.Errorf("token %q holds dk v%d: %w", h.cfg.TokenLabel, vs[len(vs)-1], ErrDomainKeyExists)
		case first:
			next = 1
		case len(vs) == 0:
			return fmt.Errorf("token %q: %w", h.cfg.TokenLabel, hsm.ErrNoDomainKey)
		case vs[len(vs)-1] == 1<<32-1:
			return fmt.Errorf("token %q: dk versions exhausted", h.cfg.TokenLabel)
		default:
			next = vs[len(vs)-1] + 1
		}
		_, err = h.p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, dkTemplate(h.DomainKeyLabel(next), h.cfg.RequireTrustedWrap))
		switch {
		case isCode(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID), isCode(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID), isCode(err, pkcs11.CKR_TEMPLATE_INCONSISTENT):
			return fmt.Errorf("%w: token %q: %w", ErrDomainKeyPolicy, h.cfg.TokenLabel, err)
		case err != nil:
			return fmt.Errorf("generate dk v%d: %w", next, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return next, nil
}
