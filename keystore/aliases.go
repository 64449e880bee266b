package keystore

import (
	"context"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// aliasTarget validates an alias write's name, target and request id.
func (s *Store) aliasTarget(aliasName, targetKeyID, requestID string) (string, *fsmpb.Key, error) {
	name, err := checkAliasName(aliasName, true)
	if err != nil {
		return "", nil, err
	}
	if err := checkRequestID(requestID); err != nil {
		return "", nil, err
	}
	if targetKeyID == "" {
		return "", nil, validationErr("target key id is required")
	}
	k, err := s.resolveKeyOnly("target key id", targetKeyID)
	if err != nil {
		return "", nil, err
	}
	return name, k, nil
}

// CreateAlias names a key. The name must be free.
func (s *Store) CreateAlias(ctx context.Context, aliasName, targetKeyID string) (WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	name, k, err := s.aliasTarget(aliasName, targetKeyID, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	res, err := s.propose(ctx, "create alias", fsmpb.CommandType_COMMAND_TYPE_CREATE_ALIAS, &fsmpb.AliasChange{Name: name, KeyId: k.GetId()}, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{CommitIndex: res.GetIndex(), KeyID: k.GetId()}, nil
}

// UpdateAlias points an alias at another key of the same spec and usage, so
// that callers of the alias keep working.
func (s *Store) UpdateAlias(ctx context.Context, aliasName, targetKeyID string) (WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	name, k, err := s.aliasTarget(aliasName, targetKeyID, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	if a, ok := s.state.Alias(name); ok {
		if old, ok := s.state.Key(a.GetKeyId()); ok && (old.GetSpec() != k.GetSpec() || old.GetUsage() != k.GetUsage()) {
			return WriteResult{}, validationErr("alias %s points at a %s %s key; the new target %s is %s %s and must match",
				name, keySpec(old), keyUsage(old), k.GetId(), keySpec(k), keyUsage(k))
		}
	}
	res, err := s.propose(ctx, "update alias", fsmpb.CommandType_COMMAND_TYPE_UPDATE_ALIAS, &fsmpb.AliasChange{Name: name, KeyId: k.GetId()}, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{CommitIndex: res.GetIndex(), KeyID: k.GetId()}, nil
}

// DeleteAlias removes an alias; the key is untouched.
func (s *Store) DeleteAlias(ctx context.Context, aliasName string) (WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	name, err := checkAliasName(aliasName, false)
	if err != nil {
		return WriteResult{}, err
	}
	if err := checkRequestID(requestID); err != nil {
		return WriteResult{}, err
	}
	res, err := s.propose(ctx, "delete alias", fsmpb.CommandType_COMMAND_TYPE_DELETE_ALIAS, &fsmpb.AliasChange{Name: name}, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// ListAliases lists aliases ordered by name, all of them or (keyID given)
// those of one key; the marker is the last name returned.
func (s *Store) ListAliases(ctx context.Context, keyID string, limit int, marker string) (Page[AliasEntry], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[AliasEntry]{}, err
	}
	if marker != "" {
		if _, err := checkAliasName(marker, false); err != nil {
			return Page[AliasEntry]{}, validationErr("marker %s is not one this service returned", quote(marker))
		}
	}
	id := ""
	if keyID != "" {
		k, err := s.resolve(keyID)
		if err != nil {
			return Page[AliasEntry]{}, err
		}
		id = k.GetId()
	}
	aliases, more := s.state.Aliases(id, marker, limit)
	p := Page[AliasEntry]{Items: make([]AliasEntry, len(aliases)), Truncated: more}
	for i, a := range aliases {
		p.Items[i] = AliasEntry{
			AliasName:     a.GetName(),
			AliasFullName: "meridian:" + a.GetName(),
			TargetKeyID:   a.GetKeyId(),
			CreationDate:  unixTime(a.GetCreatedUnixNano()),
			UpdatedDate:   unixTime(a.GetUpdatedUnixNano()),
		}
	}
	if more && len(aliases) > 0 {
		p.NextMarker = aliases[len(aliases)-1].GetName()
	}
	return p, nil
}
