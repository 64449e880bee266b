package keystore

import "context"

// Service is the keystore's public contract: every operation a client plane
// serves (the gRPC API today; the AWS-compatible API and the console later).
// *Store is the implementation; transport depends on Service, and its test
// fakes implement it in full, so a fake cannot lag the real store.
//
// It is declared here, by the provider, against the usual Go habit of
// declaring an interface where it is used (STYLE.md, convention 6): one
// contract is shared by every client plane, their fakes and the keystore's
// own tests, and a copy per consumer drifted (transport, a keystore test and
// a check in node each wrote the 31 methods out). The keystore owns the
// operations' rules, so it owns their signatures; a change here fails to
// compile in every consumer at once.
//
// Operator and lifecycle calls (RotateDomainKey, DomainKeyStatus,
// RunDueTasks, Close) are not part of it: the node wiring uses *Store for
// those directly.
//
// Every operation takes the call's Request from ctx (WithRequest); no
// operation takes the caller's ids as arguments.
type Service interface {
	// Control plane: key lifecycle, tags, aliases, rotation. Writes replicate
	// through Raft; a write's idempotency id is the ID of the Request on ctx
	// (a retry with the same ID answers with the first result).
	CreateKey(ctx context.Context, in CreateKeyInput) (KeyMetadata, WriteResult, error)
	DescribeKey(ctx context.Context, keyID string) (KeyMetadata, error)
	ListKeys(ctx context.Context, limit int, marker string) (Page[KeyListEntry], error)
	UpdateKeyDescription(ctx context.Context, keyID, description string) (WriteResult, error)
	TagResource(ctx context.Context, keyID string, tags []Tag) (WriteResult, error)
	UntagResource(ctx context.Context, keyID string, tagKeys []string) (WriteResult, error)
	ListResourceTags(ctx context.Context, keyID string, limit int, marker string) (Page[Tag], error)
	CreateAlias(ctx context.Context, aliasName, targetKeyID string) (WriteResult, error)
	UpdateAlias(ctx context.Context, aliasName, targetKeyID string) (WriteResult, error)
	DeleteAlias(ctx context.Context, aliasName string) (WriteResult, error)
	ListAliases(ctx context.Context, keyID string, limit int, marker string) (Page[AliasEntry], error)
	EnableKey(ctx context.Context, keyID string) (WriteResult, error)
	DisableKey(ctx context.Context, keyID string) (WriteResult, error)
	ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int) (ScheduleDeletionResult, error)
	CancelKeyDeletion(ctx context.Context, keyID string) (WriteResult, error)
	EnableKeyRotation(ctx context.Context, keyID string, periodDays int) (WriteResult, error)
	DisableKeyRotation(ctx context.Context, keyID string) (WriteResult, error)
	GetKeyRotationStatus(ctx context.Context, keyID string) (RotationStatus, error)
	RotateKeyOnDemand(ctx context.Context, keyID string) (KeyRotation, WriteResult, error)
	ListKeyRotations(ctx context.Context, keyID string, limit int, marker string) (Page[KeyRotation], error)

	// Data plane: served from this node's replica and HSM.
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

var _ Service = (*Store)(nil)
