package keystore

import (
	"context"
	"sort"
	"strings"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// CreateKey generates the key's first version at this node (wrapped under
// the domain key) and replicates the new key. Protection level HSM keys are
// generated and wrapped the same way; they differ in use (see hsmlevel.go)
// and, being plain AES-GCM for symmetric keys, should be rotated before
// about 2^32 encryptions per version (docs/CRYPTO.md).
func (s *Store) CreateKey(ctx context.Context, in CreateKeyInput) (KeyMetadata, WriteResult, error) {
	spec, usage, err := checkSpecUsage(in.KeySpec, in.KeyUsage)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	level, err := s.checkOriginProtection(in.Origin, in.ProtectionLevel)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	requestID := RequestFrom(ctx).ID
	if err := checkRequestID(requestID); err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	staleMs, err := checkMaxStaleness(in.MaxStaleness)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	now := s.now()
	v, err := s.newVersion(ctx, spec, 1, false, now)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	key := &fsmpb.Key{
		Id:              newUUID(),
		Description:     in.Description,
		Tags:            tags,
		Spec:            specs[spec].number,
		Usage:           enumNumber(usageByNumber, usage),
		State:           fsmpb.KeyState_KEY_STATE_ENABLED,
		Origin:          enumNumber(originByNumber, OriginMeridian),
		ProtectionLevel: enumNumber(protectionByNumber, level),
		CreatedUnixNano: now.UnixNano(),
		Versions:        []*fsmpb.KeyVersion{v},
		MaxStalenessMs:  staleMs,
	}
	res, err := s.propose(ctx, "create key", fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, &fsmpb.CreateKey{Key: key}, requestID)
	if err != nil {
		return KeyMetadata{}, WriteResult{}, err
	}
	// A retried request id returns the key the first attempt made.
	if res.GetKey() != nil {
		key = res.GetKey()
	}
	s.log.Debug("key created", "key", key.GetId(), "spec", spec, "usage", usage, "index", res.GetIndex())
	return metadata(key), writeResult(res), nil
}

// checkSpecUsage fills defaults and checks the spec/usage pair.
func checkSpecUsage(spec KeySpec, usage KeyUsage) (KeySpec, KeyUsage, error) {
	if spec == "" {
		spec = SpecSymmetricDefault
	}
	info, ok := specs[spec]
	if !ok {
		return "", "", validationErr("key spec %s is not one of SYMMETRIC_DEFAULT, HMAC_256, HMAC_384, HMAC_512, RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521", quote(string(spec)))
	}
	if usage == "" {
		return spec, info.usages[0], nil
	}
	if enumNumber(usageByNumber, usage) == 0 {
		return "", "", validationErr("key usage %s is not one of ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC", quote(string(usage)))
	}
	if !info.allows(usage) {
		allowed := make([]string, len(info.usages))
		for i, u := range info.usages {
			allowed[i] = string(u)
		}
		return "", "", validationErr("key spec %s does not support key usage %s; it supports %s", spec, usage, strings.Join(allowed, " or "))
	}
	return spec, usage, nil
}

// checkOriginProtection accepts the origin and protection level this node
// can create, and returns the level (default SOFTWARE). HSM needs an HSM
// with the KeyOps capability.
func (s *Store) checkOriginProtection(o Origin, p ProtectionLevel) (ProtectionLevel, error) {
	if o != "" && o != OriginMeridian {
		return "", validationErr("origin %s is not supported; use MERIDIAN", quote(string(o)))
	}
	switch p {
	case "", ProtectionSoftware:
		return ProtectionSoftware, nil
	case ProtectionHSM:
		if _, ok := s.hsm.KeyOps(); !ok {
			return "", userErr(ErrUnsupported, "protection level HSM needs an HSM backend with key operations; this node's backend (%s) has none: use SOFTWARE, or create the key through a node whose HSM supports them",
				backendName(s.hsm))
		}
		return ProtectionHSM, nil
	}
	return "", validationErr("protection level %s is not SOFTWARE or HSM", quote(string(p)))
}

// DescribeKey returns a key's metadata from the local replica. It is a
// data-plane read, so a key's staleness bound applies to it too: a stale
// node would describe a state the majority may have left. A symmetric key
// of ProtectionLevel HSM encrypts with AES-GCM and random 96-bit nonces, so
// each version is good for about 2^32 encryptions: such keys should rotate
// (docs/CRYPTO.md).
func (s *Store) DescribeKey(ctx context.Context, keyID string) (KeyMetadata, error) {
	k, err := s.resolve(keyID)
	if err != nil {
		return KeyMetadata{}, err
	}
	if err := s.checkFresh(k); err != nil {
		return KeyMetadata{}, err
	}
	return metadata(k), nil
}

// ListKeys lists keys ordered by id; the marker is the last id returned.
func (s *Store) ListKeys(ctx context.Context, limit int, marker string) (Page[KeyListEntry], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[KeyListEntry]{}, err
	}
	if marker != "" && !isUUID(marker) {
		return Page[KeyListEntry]{}, validationErr("marker %s is not one this service returned", quote(marker))
	}
	keys, more := s.state.Keys(marker, limit)
	p := Page[KeyListEntry]{Items: make([]KeyListEntry, len(keys)), Truncated: more}
	for i, k := range keys {
		p.Items[i] = KeyListEntry{KeyID: k.GetId(), KeyName: keyName(k.GetId())}
	}
	if more && len(keys) > 0 {
		p.NextMarker = keys[len(keys)-1].GetId()
	}
	return p, nil
}

// keyWrite is the shape of most control-plane writes: resolve, propose a
// payload naming the key under the ctx's request id, return the commit index.
func (s *Store) keyWrite(ctx context.Context, op, ref string, t fsmpb.CommandType, payload func(id string) fsmpbMessage) (*fsmpb.Result, error) {
	requestID := RequestFrom(ctx).ID
	if err := checkRequestID(requestID); err != nil {
		return nil, err
	}
	k, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, op, t, payload(k.GetId()), requestID)
	if err != nil {
		return nil, err
	}
	s.log.Debug(op, "key", k.GetId(), "index", res.GetIndex())
	return res, nil
}

func keyRef(id string) fsmpbMessage { return &fsmpb.KeyRef{KeyId: id} }

// UpdateKeyDescription replaces a key's description.
func (s *Store) UpdateKeyDescription(ctx context.Context, keyID, description string) (WriteResult, error) {
	if err := checkDescription(description); err != nil {
		return WriteResult{}, err
	}
	res, err := s.keyWrite(ctx, "update key description", keyID, fsmpb.CommandType_COMMAND_TYPE_UPDATE_DESCRIPTION,
		func(id string) fsmpbMessage { return &fsmpb.UpdateDescription{KeyId: id, Description: description} })
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// TagResource adds or replaces tags; a key holds at most 50.
func (s *Store) TagResource(ctx context.Context, keyID string, tags []Tag) (WriteResult, error) {
	if len(tags) == 0 {
		return WriteResult{}, validationErr("at least one tag is required")
	}
	m, err := checkTags(tags)
	if err != nil {
		return WriteResult{}, err
	}
	if k, err := s.resolve(keyID); err == nil {
		n := len(k.GetTags())
		for t := range m {
			if _, ok := k.GetTags()[t]; !ok {
				n++
			}
		}
		if n > maxTags {
			return WriteResult{}, userErr(ErrLimitExceeded, "key %s would have %d tags; a key holds at most %d", k.GetId(), n, maxTags)
		}
	}
	res, err := s.keyWrite(ctx, "tag key", keyID, fsmpb.CommandType_COMMAND_TYPE_TAG_KEY,
		func(id string) fsmpbMessage { return &fsmpb.TagKey{KeyId: id, Tags: m} })
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// UntagResource removes tags by key; absent tags are ignored.
func (s *Store) UntagResource(ctx context.Context, keyID string, tagKeys []string) (WriteResult, error) {
	if len(tagKeys) == 0 || len(tagKeys) > maxTags {
		return WriteResult{}, validationErr("%d tag keys given; must be 1-%d", len(tagKeys), maxTags)
	}
	for _, t := range tagKeys {
		if err := checkTagKey(t); err != nil {
			return WriteResult{}, err
		}
	}
	res, err := s.keyWrite(ctx, "untag key", keyID, fsmpb.CommandType_COMMAND_TYPE_UNTAG_KEY,
		func(id string) fsmpbMessage { return &fsmpb.UntagKey{KeyId: id, TagKeys: tagKeys} })
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// ListResourceTags lists a key's tags ordered by tag key; the marker is the
// last tag key returned.
func (s *Store) ListResourceTags(ctx context.Context, keyID string, limit int, marker string) (Page[Tag], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[Tag]{}, err
	}
	if len(marker) > 4*maxTagKey {
		return Page[Tag]{}, validationErr("marker %s is not one this service returned", quote(marker))
	}
	k, err := s.resolve(keyID)
	if err != nil {
		return Page[Tag]{}, err
	}
	keys := make([]string, 0, len(k.GetTags()))
	for t := range k.GetTags() {
		if marker == "" || t > marker {
			keys = append(keys, t)
		}
	}
	sort.Strings(keys)
	var p Page[Tag]
	if len(keys) > limit {
		keys, p.Truncated, p.NextMarker = keys[:limit], true, keys[limit-1]
	}
	p.Items = make([]Tag, len(keys))
	for i, t := range keys {
		p.Items[i] = Tag{Key: t, Value: k.GetTags()[t]}
	}
	return p, nil
}

// EnableKey makes a DISABLED key usable again.
func (s *Store) EnableKey(ctx context.Context, keyID string) (WriteResult, error) {
	res, err := s.keyWrite(ctx, "enable key", keyID, fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, keyRef)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// DisableKey stops every cryptographic use of a key; every node wipes its
// cached material when it applies the change.
func (s *Store) DisableKey(ctx context.Context, keyID string) (WriteResult, error) {
	res, err := s.keyWrite(ctx, "disable key", keyID, fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY, keyRef)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// ScheduleKeyDeletion makes a key PENDING_DELETION for 7-30 days (0: 30);
// the leader's scheduler deletes it when due.
func (s *Store) ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int) (ScheduleDeletionResult, error) {
	if pendingWindowDays == 0 {
		pendingWindowDays = defaultWindowDays
	}
	if pendingWindowDays < minWindowDays || pendingWindowDays > maxWindowDays {
		return ScheduleDeletionResult{}, validationErr("pending window is %d days; must be %d-%d", pendingWindowDays, minWindowDays, maxWindowDays)
	}
	res, err := s.keyWrite(ctx, "schedule key deletion", keyID, fsmpb.CommandType_COMMAND_TYPE_SCHEDULE_DELETION,
		func(id string) fsmpbMessage {
			return &fsmpb.ScheduleDeletion{KeyId: id, PendingWindowDays: uint32(pendingWindowDays)}
		})
	if err != nil {
		return ScheduleDeletionResult{}, err
	}
	k := res.GetKey()
	return ScheduleDeletionResult{
		KeyID:             k.GetId(),
		DeletionDate:      unixTime(k.GetDeletionUnixNano()),
		KeyState:          enumName(stateByNumber, k.GetState()),
		PendingWindowDays: k.GetPendingWindowDays(),
		WriteResult:       writeResult(res),
	}, nil
}

// CancelKeyDeletion returns a PENDING_DELETION key to DISABLED.
func (s *Store) CancelKeyDeletion(ctx context.Context, keyID string) (WriteResult, error) {
	res, err := s.keyWrite(ctx, "cancel key deletion", keyID, fsmpb.CommandType_COMMAND_TYPE_CANCEL_DELETION, keyRef)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}
