package keystore

import (
	"strings"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Key identifier forms a caller may give.
const (
	keyFullPrefix   = "meridian:key/"
	aliasFullPrefix = "meridian:alias/"
	aliasPrefix     = "alias/"
)

// keyName is a key's full name.
func keyName(id string) string { return keyFullPrefix + id }

// isUUID reports whether s is a UUID in canonical form (any hex case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func malformedKeyID(id string) error {
	return validationErr("key id %s is malformed: give a key id (UUID), alias/<name>, meridian:key/<id> or meridian:alias/<name>", quote(id))
}

// parseKeyRef checks a caller's key identifier. It returns either a key id
// or an alias name ("alias/...").
func parseKeyRef(ref string) (keyID, alias string, err error) {
	switch {
	case ref == "":
		return "", "", validationErr("key id is required")
	case len(ref) > maxKeyIDInput:
		return "", "", validationErr("key id is %d bytes; must be at most %d", len(ref), maxKeyIDInput)
	case strings.HasPrefix(ref, aliasPrefix), strings.HasPrefix(ref, aliasFullPrefix):
		name, err := checkAliasName(ref, false)
		if err != nil {
			return "", "", err
		}
		return "", name, nil
	}
	id := strings.TrimPrefix(ref, keyFullPrefix)
	if !isUUID(id) {
		return "", "", malformedKeyID(ref)
	}
	return id, "", nil
}

// resolve turns a key id, alias name or full name into the key from the
// local replica: malformed input is ErrValidation, an unknown key or alias
// ErrNotFound.
func (s *Store) resolve(ref string) (*fsmpb.Key, error) {
	id, alias, err := parseKeyRef(ref)
	if err != nil {
		return nil, err
	}
	if alias != "" {
		a, ok := s.state.Alias(alias)
		if !ok {
			return nil, userErr(ErrNotFound, "alias %s not found", alias)
		}
		id = a.GetKeyId()
	}
	k, ok := s.state.Key(id)
	if !ok {
		return nil, userErr(ErrNotFound, "key %s not found", id)
	}
	return k, nil
}

// resolveKeyOnly is resolve for parameters that must name a key itself (an
// alias target): aliases are refused.
func (s *Store) resolveKeyOnly(what, ref string) (*fsmpb.Key, error) {
	id, alias, err := parseKeyRef(ref)
	if err != nil {
		return nil, err
	}
	if alias != "" {
		return nil, validationErr("%s must be a key id or meridian:key/<id>, not an alias", what)
	}
	k, ok := s.state.Key(id)
	if !ok {
		return nil, userErr(ErrNotFound, "key %s not found", id)
	}
	return k, nil
}

// usable resolves ref for a cryptographic operation: this node must be
// fresh enough for the key's staleness bound, and the key ENABLED.
func (s *Store) usable(ref string) (*fsmpb.Key, error) {
	k, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	return k, s.checkServable(k)
}

// checkServable is the per-operation gate of every cryptographic use of a
// replicated key, in this order: freshness first (on a stale node the
// state is what cannot be trusted), then the node's HSM health, then the
// key's state.
func (s *Store) checkServable(k *fsmpb.Key) error {
	if err := s.checkFresh(k); err != nil {
		return err
	}
	if err := s.checkCryptoReady(); err != nil {
		return err
	}
	return checkUsableState(k)
}

func checkUsableState(k *fsmpb.Key) error {
	switch k.GetState() {
	case fsmpb.KeyState_KEY_STATE_ENABLED:
		return nil
	case fsmpb.KeyState_KEY_STATE_DISABLED:
		return userErr(ErrDisabled, "key %s is disabled", k.GetId())
	case fsmpb.KeyState_KEY_STATE_PENDING_DELETION:
		return userErr(ErrInvalidState, "key %s is pending deletion", k.GetId())
	}
	return userErr(ErrInvalidState, "key %s is in state %v", k.GetId(), k.GetState())
}

// keySpec and keyUsage read a replicated key's enums.
func keySpec(k *fsmpb.Key) KeySpec   { return enumName(specByNumber, k.GetSpec()) }
func keyUsage(k *fsmpb.Key) KeyUsage { return enumName(usageByNumber, k.GetUsage()) }

// requireUsage checks the key's usage for an operation.
func requireUsage(k *fsmpb.Key, want KeyUsage, op string) error {
	if u := keyUsage(k); u != want {
		return userErr(ErrInvalidKeyUsage, "key %s has key usage %s; %s needs %s", k.GetId(), u, op, want)
	}
	return nil
}

// currentVersion is the key's newest version.
func currentVersion(k *fsmpb.Key) *fsmpb.KeyVersion {
	vs := k.GetVersions()
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// findVersion returns version v of the key, or nil.
func findVersion(k *fsmpb.Key, v uint32) *fsmpb.KeyVersion {
	if i := fsm.VersionIndex(k, v); i >= 0 {
		return k.GetVersions()[i]
	}
	return nil
}
