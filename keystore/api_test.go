package keystore

import "context"

// The method set transport codes against (helpers/keystore-api.md), pinned
// so that a signature change fails to compile here first.
type transportAPI interface {
	CreateKey(ctx context.Context, in CreateKeyInput) (KeyMetadata, WriteResult, error)
	DescribeKey(ctx context.Context, keyID string) (KeyMetadata, error)
	ListKeys(ctx context.Context, limit int, marker string) (Page[KeyListEntry], error)
	UpdateKeyDescription(ctx context.Context, keyID, description, requestID string) (WriteResult, error)
	TagResource(ctx context.Context, keyID string, tags []Tag, requestID string) (WriteResult, error)
	UntagResource(ctx context.Context, keyID string, tagKeys []string, requestID string) (WriteResult, error)
	ListResourceTags(ctx context.Context, keyID string, limit int, marker string) (Page[Tag], error)
	CreateAlias(ctx context.Context, aliasName, targetKeyID, requestID string) (WriteResult, error)
	UpdateAlias(ctx context.Context, aliasName, targetKeyID, requestID string) (WriteResult, error)
	DeleteAlias(ctx context.Context, aliasName, requestID string) (WriteResult, error)
	ListAliases(ctx context.Context, keyID string, limit int, marker string) (Page[AliasEntry], error)
	EnableKey(ctx context.Context, keyID, requestID string) (WriteResult, error)
	DisableKey(ctx context.Context, keyID, requestID string) (WriteResult, error)
	ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int, requestID string) (ScheduleDeletionResult, error)
	CancelKeyDeletion(ctx context.Context, keyID, requestID string) (WriteResult, error)
	EnableKeyRotation(ctx context.Context, keyID string, periodDays int, requestID string) (WriteResult, error)
	DisableKeyRotation(ctx context.Context, keyID, requestID string) (WriteResult, error)
	GetKeyRotationStatus(ctx context.Context, keyID string) (RotationStatus, error)
	RotateKeyOnDemand(ctx context.Context, keyID, requestID string) (KeyRotation, WriteResult, error)
	ListKeyRotations(ctx context.Context, keyID string, limit int, marker string) (Page[KeyRotation], error)
	Encrypt(ctx context.Context, in EncryptInput) (EncryptOutput, error)
	Decrypt(ctx context.Context, in DecryptInput) (DecryptOutput, error)
	ReEncrypt(ctx context.Context, in ReEncryptInput) (ReEncryptOutput, error)
	GenerateDataKey(ctx context.Context, in GenerateDataKeyInput) (GenerateDataKeyOutput, error)
	GenerateDataKeyPair(ctx context.Context, in GenerateDataKeyPairInput) (GenerateDataKeyPairOutput, error)
	Sign(ctx context.Context, in SignInput) (SignOutput, error)
	Verify(ctx context.Context, in VerifyInput) (VerifyOutput, error)
	GetPublicKey(ctx context.Context, keyID string) (PublicKeyOutput, error)
	GenerateMac(ctx context.Context, in MacInput) (MacOutput, error)
	VerifyMac(ctx context.Context, in MacInput) (MacOutput, error)
	GenerateRandom(ctx context.Context, numberOfBytes int) ([]byte, error)
}

var _ transportAPI = (*Store)(nil)
