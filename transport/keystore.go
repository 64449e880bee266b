package transport

import (
	"context"

	"github.com/meridiankms/meridian/keystore"
)

// KeyStore is the set of operations the gRPC service serves. It is declared
// here, by its consumer, so transport can be tested with a fake that injects
// errors the real store cannot be made to produce on demand. *keystore.Store
// satisfies it (checked below, so the contract cannot drift silently).
type KeyStore interface {
	CreateKey(ctx context.Context, in keystore.CreateKeyInput) (keystore.KeyMetadata, keystore.WriteResult, error)
	DescribeKey(ctx context.Context, keyID string) (keystore.KeyMetadata, error)
	ListKeys(ctx context.Context, limit int, marker string) (keystore.Page[keystore.KeyListEntry], error)
	UpdateKeyDescription(ctx context.Context, keyID, description, requestID string) (keystore.WriteResult, error)
	TagResource(ctx context.Context, keyID string, tags []keystore.Tag, requestID string) (keystore.WriteResult, error)
	UntagResource(ctx context.Context, keyID string, tagKeys []string, requestID string) (keystore.WriteResult, error)
	ListResourceTags(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.Tag], error)
	CreateAlias(ctx context.Context, aliasName, targetKeyID, requestID string) (keystore.WriteResult, error)
	UpdateAlias(ctx context.Context, aliasName, targetKeyID, requestID string) (keystore.WriteResult, error)
	DeleteAlias(ctx context.Context, aliasName, requestID string) (keystore.WriteResult, error)
	ListAliases(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.AliasEntry], error)
	EnableKey(ctx context.Context, keyID, requestID string) (keystore.WriteResult, error)
	DisableKey(ctx context.Context, keyID, requestID string) (keystore.WriteResult, error)
	ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int, requestID string) (keystore.ScheduleDeletionResult, error)
	CancelKeyDeletion(ctx context.Context, keyID, requestID string) (keystore.WriteResult, error)
	EnableKeyRotation(ctx context.Context, keyID string, periodDays int, requestID string) (keystore.WriteResult, error)
	DisableKeyRotation(ctx context.Context, keyID, requestID string) (keystore.WriteResult, error)
	GetKeyRotationStatus(ctx context.Context, keyID string) (keystore.RotationStatus, error)
	RotateKeyOnDemand(ctx context.Context, keyID, requestID string) (keystore.KeyRotation, keystore.WriteResult, error)
	ListKeyRotations(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.KeyRotation], error)
	Encrypt(ctx context.Context, in keystore.EncryptInput) (keystore.EncryptOutput, error)
	Decrypt(ctx context.Context, in keystore.DecryptInput) (keystore.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in keystore.ReEncryptInput) (keystore.ReEncryptOutput, error)
	GenerateDataKey(ctx context.Context, in keystore.GenerateDataKeyInput) (keystore.GenerateDataKeyOutput, error)
	GenerateDataKeyPair(ctx context.Context, in keystore.GenerateDataKeyPairInput) (keystore.GenerateDataKeyPairOutput, error)
	Sign(ctx context.Context, in keystore.SignInput) (keystore.SignOutput, error)
	Verify(ctx context.Context, in keystore.VerifyInput) (keystore.VerifyOutput, error)
	GetPublicKey(ctx context.Context, keyID string) (keystore.PublicKeyOutput, error)
	GenerateMac(ctx context.Context, in keystore.MacInput) (keystore.MacOutput, error)
	VerifyMac(ctx context.Context, in keystore.MacInput) (keystore.MacOutput, error)
	GenerateRandom(ctx context.Context, numberOfBytes int) ([]byte, error)
}

var _ KeyStore = (*keystore.Store)(nil)
