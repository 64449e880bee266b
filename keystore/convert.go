package keystore

import (
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// unixTime converts a command timestamp; 0 stays the zero time.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// metadata converts a replicated key into what DescribeKey returns.
func metadata(k *fsmpb.Key) KeyMetadata {
	spec, usage := keySpec(k), keyUsage(k)
	state := enumName(stateByNumber, k.GetState())
	m := KeyMetadata{
		KeyID:                k.GetId(),
		KeyName:              keyName(k.GetId()),
		Description:          k.GetDescription(),
		KeySpec:              spec,
		KeyUsage:             usage,
		KeyState:             state,
		Enabled:              state == StateEnabled,
		Origin:               enumName(originByNumber, k.GetOrigin()),
		ProtectionLevel:      enumName(protectionByNumber, k.GetProtectionLevel()),
		CreationDate:         unixTime(k.GetCreatedUnixNano()),
		DeletionDate:         unixTime(k.GetDeletionUnixNano()),
		RotationEnabled:      k.GetRotationPeriodDays() > 0,
		RotationPeriodDays:   k.GetRotationPeriodDays(),
		NextRotationDate:     unixTime(k.GetNextRotationUnixNano()),
		EncryptionAlgorithms: encryptionAlgorithms(spec, usage),
		SigningAlgorithms:    signingAlgorithms(spec, usage),
		MacAlgorithms:        macAlgorithms(spec),
		MaxStaleness:         maxStaleness(k),
	}
	if state == StatePendingDeletion {
		m.PendingWindowDays = k.GetPendingWindowDays()
	}
	if v := currentVersion(k); v != nil {
		m.CurrentVersion = v.GetVersion()
	}
	return m
}

// rotation describes a version made by a rotation (version 2 onwards).
func rotation(keyID string, v *fsmpb.KeyVersion) KeyRotation {
	t := RotationAutomatic
	if v.GetOnDemand() {
		t = RotationOnDemand
	}
	return KeyRotation{
		KeyID:        keyID,
		KeyVersion:   v.GetVersion(),
		RotationDate: unixTime(v.GetCreatedUnixNano()),
		RotationType: t,
	}
}
