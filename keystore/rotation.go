package keystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// rotatable resolves a key for a rotation operation: only SYMMETRIC_DEFAULT
// keys rotate, as in AWS KMS.
func (s *Store) rotatable(ref string) (*fsmpb.Key, error) {
	k, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	if spec := keySpec(k); spec != SpecSymmetricDefault {
		return nil, userErr(ErrUnsupported, "key %s has key spec %s; only SYMMETRIC_DEFAULT keys rotate", k.GetId(), spec)
	}
	return k, nil
}

// EnableKeyRotation turns on automatic rotation every 90-2560 days (0: 365).
func (s *Store) EnableKeyRotation(ctx context.Context, keyID string, periodDays int) (WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	if periodDays == 0 {
		periodDays = defaultPeriodDays
	}
	if periodDays < minPeriodDays || periodDays > maxPeriodDays {
		return WriteResult{}, validationErr("rotation period is %d days; must be %d-%d", periodDays, minPeriodDays, maxPeriodDays)
	}
	if err := checkRequestID(requestID); err != nil {
		return WriteResult{}, err
	}
	k, err := s.rotatable(keyID)
	if err != nil {
		return WriteResult{}, err
	}
	res, err := s.propose(ctx, "enable key rotation", fsmpb.CommandType_COMMAND_TYPE_ENABLE_ROTATION,
		&fsmpb.EnableRotation{KeyId: k.GetId(), PeriodDays: uint32(periodDays)}, requestID)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// DisableKeyRotation turns automatic rotation off.
func (s *Store) DisableKeyRotation(ctx context.Context, keyID string) (WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	if err := checkRequestID(requestID); err != nil {
		return WriteResult{}, err
	}
	k, err := s.rotatable(keyID)
	if err != nil {
		return WriteResult{}, err
	}
	res, err := s.propose(ctx, "disable key rotation", fsmpb.CommandType_COMMAND_TYPE_DISABLE_ROTATION, keyRef(k.GetId()), requestID)
	if err != nil {
		return WriteResult{}, err
	}
	return writeResult(res), nil
}

// GetKeyRotationStatus reports the rotation settings from the local replica.
func (s *Store) GetKeyRotationStatus(ctx context.Context, keyID string) (RotationStatus, error) {
	k, err := s.rotatable(keyID)
	if err != nil {
		return RotationStatus{}, err
	}
	st := RotationStatus{
		KeyID:              k.GetId(),
		RotationEnabled:    k.GetRotationPeriodDays() > 0,
		RotationPeriodDays: k.GetRotationPeriodDays(),
		NextRotationDate:   unixTime(k.GetNextRotationUnixNano()),
	}
	vs := k.GetVersions()
	for i := len(vs) - 1; i > 0; i-- {
		if vs[i].GetOnDemand() {
			st.OnDemandStartDate = unixTime(vs[i].GetCreatedUnixNano())
			break
		}
	}
	return st, nil
}

// RotateKeyOnDemand adds a new current version now. Older versions keep
// decrypting. When another rotation wins the race for the version number,
// it re-reads the key and tries the next number.
func (s *Store) RotateKeyOnDemand(ctx context.Context, keyID string) (KeyRotation, WriteResult, error) {
	requestID := RequestFrom(ctx).ID
	if err := checkRequestID(requestID); err != nil {
		return KeyRotation{}, WriteResult{}, err
	}
	if requestID == "" {
		requestID = s.cfg.NewRequestID()
	}
	k, err := s.rotatable(keyID)
	if err != nil {
		return KeyRotation{}, WriteResult{}, err
	}
	for attempt := 0; ; attempt++ {
		if err := checkUsableState(k); err != nil {
			return KeyRotation{}, WriteResult{}, err
		}
		res, err := s.rotate(ctx, "rotate key on demand", k, true, attemptID(requestID, attempt))
		if errors.Is(err, errConflict) && attempt < s.cfg.RotateRetries {
			// The conflicting rotation was applied before ours was
			// refused, so the local replica already has it.
			cur, ok := s.state.Key(k.GetId())
			if !ok {
				return KeyRotation{}, WriteResult{}, userErr(ErrNotFound, "key %s not found", k.GetId())
			}
			k = cur
			continue
		}
		if err != nil {
			return KeyRotation{}, WriteResult{}, err
		}
		v := currentVersion(res.GetKey())
		if v == nil {
			return KeyRotation{}, WriteResult{}, fmt.Errorf("rotate key %s: %w: result has no key", k.GetId(), ErrInternal)
		}
		return rotation(k.GetId(), v), writeResult(res), nil
	}
}

// attemptID derives a distinct request id per rotation attempt: the fsm
// remembers the Conflict result of an attempt under its id, so a retry under
// the same id would only replay it. Deterministic, so a client retrying the
// whole call replays the attempts and lands on the one that succeeded.
func attemptID(requestID string, attempt int) string {
	if attempt == 0 {
		return requestID
	}
	return requestID + "#" + strconv.Itoa(attempt+1)
}

// rotate generates, wraps and proposes the next version of k.
func (s *Store) rotate(ctx context.Context, op string, k *fsmpb.Key, onDemand bool, requestID string) (*fsmpb.Result, error) {
	cur := currentVersion(k)
	if cur == nil {
		return nil, fmt.Errorf("%s %s: %w: key has no versions", op, k.GetId(), ErrInternal)
	}
	next := cur.GetVersion() + 1
	v, err := s.newVersion(ctx, keySpec(k), next, onDemand, s.now())
	if err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, op, fsmpb.CommandType_COMMAND_TYPE_ROTATE_KEY, &fsmpb.RotateKey{KeyId: k.GetId(), Version: v}, requestID)
	if err != nil {
		return nil, err
	}
	s.log.Info("key rotated", "key", k.GetId(), "version", next, "on_demand", onDemand, "index", res.GetIndex())
	return res, nil
}

// ListKeyRotations lists the versions made by rotations (2 onwards), oldest
// first; the marker is the last version returned.
func (s *Store) ListKeyRotations(ctx context.Context, keyID string, limit int, marker string) (Page[KeyRotation], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[KeyRotation]{}, err
	}
	after := uint64(1)
	if marker != "" {
		if after, err = strconv.ParseUint(marker, 10, 32); err != nil || after < 1 {
			return Page[KeyRotation]{}, validationErr("marker %s is not one this service returned", quote(marker))
		}
	}
	k, err := s.rotatable(keyID)
	if err != nil {
		return Page[KeyRotation]{}, err
	}
	var p Page[KeyRotation]
	for _, v := range k.GetVersions() {
		if uint64(v.GetVersion()) <= after {
			continue
		}
		if len(p.Items) == limit {
			p.Truncated = true
			p.NextMarker = strconv.FormatUint(uint64(p.Items[len(p.Items)-1].KeyVersion), 10)
			break
		}
		p.Items = append(p.Items, rotation(k.GetId(), v))
	}
	return p, nil
}
