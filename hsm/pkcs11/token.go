package pkcs11

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/pkcs11"
)

// CKM_AES_KEY_WRAP_KWP is RFC 5649 in PKCS#11 v3.0. SoftHSM 2.6 offers
// RFC 5649 under the older number CKM_AES_KEY_WRAP_PAD (0x210A), which is
// what this backend uses; both are named here so errors and docs can say
// which one a token lacks.
const CKM_AES_KEY_WRAP_KWP = 0x0000210B //nolint:revive // PKCS#11 spelling

// mechNames names the mechanisms this backend asks tokens for.
var mechNames = map[uint]string{
	pkcs11.CKM_AES_KEY_GEN:      "CKM_AES_KEY_GEN",
	pkcs11.CKM_AES_KEY_WRAP_PAD: "CKM_AES_KEY_WRAP_PAD",
	pkcs11.CKM_AES_CBC:          "CKM_AES_CBC",
	pkcs11.CKM_AES_GCM:          "CKM_AES_GCM",
	CKM_AES_KEY_WRAP_KWP:        "CKM_AES_KEY_WRAP_KWP",
}

func mechName(m uint) string {
	if n, ok := mechNames[m]; ok {
		return fmt.Sprintf("%s (0x%X)", n, m)
	}
	return fmt.Sprintf("0x%X", m)
}

// required are the mechanisms every token must offer.
var required = []uint{pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_KEY_WRAP_PAD}

// tokenLabel trims the blank (and, for sloppy modules, NUL) padding of
// CK_TOKEN_INFO's fixed-size label.
func tokenLabel(ti pkcs11.TokenInfo) string {
	return strings.TrimRight(ti.Label, " \x00")
}

// findToken returns the slot holding the initialised token labelled
// label. Its error lists the labels it did find, so an operator can see a
// typo at once.
func findToken(p p11, label string) (uint, pkcs11.TokenInfo, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("list slots: %w", err)
	}
	var found []string
	var slot uint
	var info pkcs11.TokenInfo
	matches := 0
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		l := tokenLabel(ti)
		found = append(found, fmt.Sprintf("%q", l))
		if l == label {
			slot, info = s, ti
			matches++
		}
	}
	switch matches {
	case 1:
		return slot, info, nil
	case 0:
		slices.Sort(found)
		list := "none"
		if len(found) > 0 {
			list = strings.Join(found, ", ")
		}
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: no token labelled %q (tokens found: %s)", ErrTokenNotFound, label, list)
	default:
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: %d tokens are labelled %q; labels must be unique", ErrTokenNotFound, matches, label)
	}
}

// mechanisms returns the set of mechanisms the slot's token offers.
func mechanisms(p p11, slot uint) (map[uint]bool, error) {
	ms, err := p.GetMechanismList(slot)
	if err != nil {
		return nil, fmt.Errorf("list mechanisms: %w", err)
	}
	set := make(map[uint]bool, len(ms))
	for _, m := range ms {
		set[m.Mechanism] = true
	}
	return set, nil
}

func checkMechanisms(set map[uint]bool, label string) error {
	for _, m := range required {
		if !set[m] {
			return fmt.Errorf("%w: token %q lacks mechanism %s", ErrMechanism, label, mechName(m))
		}
	}
	return nil
}

// login opens a read-write session on slot and logs the user in. Login
// state is per token and process, so CKR_USER_ALREADY_LOGGED_IN means
// success. The PIN never enters an error.
func login(p p11, slot uint, label, pin string) (pkcs11.SessionHandle, error) {
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("open session on token %q: %w", label, err)
	}
	err = p.Login(s, pkcs11.CKU_USER, pin)
	switch {
	case err == nil, isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return s, nil
	case isCode(err, pkcs11.CKR_PIN_INCORRECT), isCode(err, pkcs11.CKR_PIN_INVALID), isCode(err, pkcs11.CKR_PIN_LEN_RANGE):
		err = fmt.Errorf("login to token %q: %w", label, ErrWrongPIN)
	case isCode(err, pkcs11.CKR_PIN_LOCKED):
		err = fmt.Errorf("login to token %q: PIN locked (the SO must unlock it): %w", label, ErrWrongPIN)
	case isCode(err, pkcs11.CKR_USER_PIN_NOT_INITIALIZED):
		err = fmt.Errorf("login to token %q: the user PIN was never set (C_InitPIN): %w", label, ErrWrongPIN)
	default:
		err = fmt.Errorf("login to token %q: %w", label, err)
	}
	_ = p.CloseSession(s)
	return 0, err
}

// InitToken initialises a fresh token labelled label on the first slot
// holding an uninitialised token, and sets its user PIN: the set-up step
// of `meridian operator hsm init` and of tests (SoftHSM keeps one free
// slot). It refuses a label already in use. soPIN and pin never appear in
// errors.
func InitToken(ctx context.Context, modulePath, label, soPIN, pin string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pkcs11: init token %q: %w", label, err)
	}
	if label == "" || len(label) > maxLabel || soPIN == "" || pin == "" {
		return fmt.Errorf("%w: init token needs a label of 1..%d bytes, an SO PIN and a user PIN", ErrInvalidConfig, maxLabel)
	}
	m, err := acquireModule(modulePath)
	if err != nil {
		return fmt.Errorf("pkcs11: init token %q: %w", label, err)
	}
	defer m.release()
	if err := initToken(m.raw, label, soPIN, pin); err != nil {
		return fmt.Errorf("pkcs11: init token %q: %w", label, err)
	}
	return nil
}

func initToken(p p11, label, soPIN, pin string) error {
	if _, _, err := findToken(p, label); err == nil {
		return fmt.Errorf("%w: a token with this label already exists", ErrInvalidConfig)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("list slots: %w", err)
	}
	free, ok := uint(0), false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free, ok = s, true
			break
		}
	}
	if !ok {
		return fmt.Errorf("%w: no slot holds an uninitialised token", ErrTokenNotFound)
	}
	if err := p.InitToken(free, soPIN, label); err != nil {
		return fmt.Errorf("C_InitToken: %w", err)
	}
	s, err := p.OpenSession(free, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer func() { _ = p.CloseSession(s) }()
	if err := p.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("SO login: %w", err)
	}
	defer func() { _ = p.Logout(s) }()
	if err := p.InitPIN(s, pin); err != nil {
		return fmt.Errorf("C_InitPIN: %w", err)
	}
	return nil
}
