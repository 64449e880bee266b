package transport

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// Response encoders: keystore output -> api response. They fail only when the
// keystore hands back an enum value the api cannot express (a bug here, so
// ErrInternal), never on data.

// timeOut maps the zero time ("not set": no deletion date, never rotated)
// to an absent field rather than to 0001-01-01.
func timeOut(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tagsOut(ts []keystore.Tag) []*apiv1.Tag {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*apiv1.Tag, len(ts))
	for i, t := range ts {
		out[i] = &apiv1.Tag{TagKey: t.Key, TagValue: t.Value}
	}
	return out
}

func keyMetadataOut(c *conv, m keystore.KeyMetadata) *apiv1.KeyMetadata {
	return &apiv1.KeyMetadata{
		KeyId:                       m.KeyID,
		KeyName:                     m.KeyName,
		Description:                 m.Description,
		KeySpec:                     keySpecs.out(c, m.KeySpec),
		KeyUsage:                    keyUsages.out(c, m.KeyUsage),
		KeyState:                    keyStates.out(c, m.KeyState),
		Enabled:                     m.Enabled,
		Origin:                      origins.out(c, m.Origin),
		ProtectionLevel:             protectionLevels.out(c, m.ProtectionLevel),
		CreationDate:                timeOut(m.CreationDate),
		DeletionDate:                timeOut(m.DeletionDate),
		PendingDeletionWindowInDays: m.PendingWindowDays,
		KeyRotationEnabled:          m.RotationEnabled,
		RotationPeriodInDays:        m.RotationPeriodDays,
		NextRotationDate:            timeOut(m.NextRotationDate),
		CurrentKeyVersion:           m.CurrentVersion,
		EncryptionAlgorithms:        encryptionAlgorithms.outList(c, m.EncryptionAlgorithms),
		SigningAlgorithms:           signingAlgorithms.outList(c, m.SigningAlgorithms),
		MacAlgorithms:               macAlgorithms.outList(c, m.MacAlgorithms),
		MaxStaleness:                durationOut(c, "max_staleness", m.MaxStaleness),
	}
}

// durationOut maps 0 ("no bound") to an absent field. A negative value
// cannot come from a valid key, so it is a bug here, hence internal.
func durationOut(c *conv, field string, d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	if d < 0 {
		c.fail(fmt.Errorf("keystore returned negative %s %s: %w", field, d, keystore.ErrInternal))
		return nil
	}
	return durationpb.New(d)
}

func listKeysOut(p keystore.Page[keystore.KeyListEntry]) *apiv1.ListKeysResponse {
	keys := make([]*apiv1.KeyListEntry, len(p.Items))
	for i, k := range p.Items {
		keys[i] = &apiv1.KeyListEntry{KeyId: k.KeyID, KeyName: k.KeyName}
	}
	return &apiv1.ListKeysResponse{Keys: keys, NextMarker: p.NextMarker, Truncated: p.Truncated}
}

func listAliasesOut(p keystore.Page[keystore.AliasEntry]) *apiv1.ListAliasesResponse {
	aliases := make([]*apiv1.AliasListEntry, len(p.Items))
	for i, a := range p.Items {
		aliases[i] = &apiv1.AliasListEntry{
			AliasName:       a.AliasName,
			AliasFullName:   a.AliasFullName,
			TargetKeyId:     a.TargetKeyID,
			CreationDate:    timeOut(a.CreationDate),
			LastUpdatedDate: timeOut(a.UpdatedDate),
		}
	}
	return &apiv1.ListAliasesResponse{Aliases: aliases, NextMarker: p.NextMarker, Truncated: p.Truncated}
}

func keyRotationOut(c *conv, r keystore.KeyRotation) *apiv1.KeyRotation {
	return &apiv1.KeyRotation{
		KeyId:        r.KeyID,
		KeyVersion:   r.KeyVersion,
		RotationDate: timeOut(r.RotationDate),
		RotationType: rotationTypes.out(c, r.RotationType),
	}
}

func listKeyRotationsOut(c *conv, p keystore.Page[keystore.KeyRotation]) *apiv1.ListKeyRotationsResponse {
	rs := make([]*apiv1.KeyRotation, len(p.Items))
	for i, r := range p.Items {
		rs[i] = keyRotationOut(c, r)
	}
	return &apiv1.ListKeyRotationsResponse{Rotations: rs, NextMarker: p.NextMarker, Truncated: p.Truncated}
}

func scheduleDeletionOut(c *conv, r keystore.ScheduleDeletionResult) *apiv1.ScheduleKeyDeletionResponse {
	return &apiv1.ScheduleKeyDeletionResponse{
		KeyId:               r.KeyID,
		DeletionDate:        timeOut(r.DeletionDate),
		KeyState:            keyStates.out(c, r.KeyState),
		PendingWindowInDays: r.PendingWindowDays,
		CommitIndex:         r.CommitIndex,
	}
}

func rotationStatusOut(s keystore.RotationStatus) *apiv1.GetKeyRotationStatusResponse {
	return &apiv1.GetKeyRotationStatusResponse{
		KeyId:                     s.KeyID,
		KeyRotationEnabled:        s.RotationEnabled,
		RotationPeriodInDays:      s.RotationPeriodDays,
		NextRotationDate:          timeOut(s.NextRotationDate),
		OnDemandRotationStartDate: timeOut(s.OnDemandStartDate),
	}
}

func encryptOut(c *conv, o keystore.EncryptOutput) *apiv1.EncryptResponse {
	return &apiv1.EncryptResponse{
		CiphertextBlob:      o.CiphertextBlob,
		KeyId:               o.KeyID,
		KeyVersion:          o.KeyVersion,
		EncryptionAlgorithm: encryptionAlgorithms.out(c, o.EncryptionAlgorithm),
	}
}

func decryptOut(c *conv, o keystore.DecryptOutput) *apiv1.DecryptResponse {
	return &apiv1.DecryptResponse{
		Plaintext:           o.Plaintext,
		KeyId:               o.KeyID,
		KeyVersion:          o.KeyVersion,
		EncryptionAlgorithm: encryptionAlgorithms.out(c, o.EncryptionAlgorithm),
	}
}

func reEncryptOut(o keystore.ReEncryptOutput) *apiv1.ReEncryptResponse {
	return &apiv1.ReEncryptResponse{
		CiphertextBlob:   o.CiphertextBlob,
		SourceKeyId:      o.SourceKeyID,
		SourceKeyVersion: o.SourceKeyVersion,
		KeyId:            o.KeyID,
		KeyVersion:       o.KeyVersion,
	}
}

func generateDataKeyOut(o keystore.GenerateDataKeyOutput) *apiv1.GenerateDataKeyResponse {
	return &apiv1.GenerateDataKeyResponse{
		CiphertextBlob: o.CiphertextBlob,
		Plaintext:      o.Plaintext,
		KeyId:          o.KeyID,
		KeyVersion:     o.KeyVersion,
	}
}

func generateDataKeyPairOut(c *conv, o keystore.GenerateDataKeyPairOutput) *apiv1.GenerateDataKeyPairResponse {
	return &apiv1.GenerateDataKeyPairResponse{
		PrivateKeyCiphertextBlob: o.PrivateKeyCiphertextBlob,
		PrivateKeyPlaintext:      o.PrivateKeyPlaintext,
		PublicKey:                o.PublicKey,
		KeyId:                    o.KeyID,
		KeyVersion:               o.KeyVersion,
		KeyPairSpec:              dataKeyPairSpecs.out(c, o.KeyPairSpec),
	}
}

func signOut(c *conv, o keystore.SignOutput) *apiv1.SignResponse {
	return &apiv1.SignResponse{
		Signature:        o.Signature,
		KeyId:            o.KeyID,
		KeyVersion:       o.KeyVersion,
		SigningAlgorithm: signingAlgorithms.out(c, o.SigningAlgorithm),
	}
}

func verifyOut(c *conv, o keystore.VerifyOutput) *apiv1.VerifyResponse {
	return &apiv1.VerifyResponse{
		SignatureValid:   o.SignatureValid,
		KeyId:            o.KeyID,
		SigningAlgorithm: signingAlgorithms.out(c, o.SigningAlgorithm),
	}
}

func publicKeyOut(c *conv, o keystore.PublicKeyOutput) *apiv1.GetPublicKeyResponse {
	return &apiv1.GetPublicKeyResponse{
		KeyId:                o.KeyID,
		PublicKey:            o.PublicKey,
		KeySpec:              keySpecs.out(c, o.KeySpec),
		KeyUsage:             keyUsages.out(c, o.KeyUsage),
		KeyVersion:           o.KeyVersion,
		EncryptionAlgorithms: encryptionAlgorithms.outList(c, o.EncryptionAlgorithms),
		SigningAlgorithms:    signingAlgorithms.outList(c, o.SigningAlgorithms),
	}
}

func generateMacOut(c *conv, o keystore.MacOutput) *apiv1.GenerateMacResponse {
	return &apiv1.GenerateMacResponse{
		Mac:          o.Mac,
		KeyId:        o.KeyID,
		KeyVersion:   o.KeyVersion,
		MacAlgorithm: macAlgorithms.out(c, o.MacAlgorithm),
	}
}

func verifyMacOut(c *conv, o keystore.MacOutput) *apiv1.VerifyMacResponse {
	return &apiv1.VerifyMacResponse{
		MacValid:     o.MacValid,
		KeyId:        o.KeyID,
		MacAlgorithm: macAlgorithms.out(c, o.MacAlgorithm),
	}
}
