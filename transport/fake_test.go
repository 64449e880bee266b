package transport

import (
	"context"
	"sync"
	"time"

	"github.com/meridiankms/meridian/identity"
	"github.com/meridiankms/meridian/keystore"
)

// fakeStore is a keystore.Service that records each call's arguments and answers
// with canned outputs, or with an injected error, panic or block. It exists
// for what the real store cannot be made to do on demand.
type fakeStore struct {
	mu       sync.Mutex
	calls    []fakeCall
	err      error         // returned by every call when set
	panicVal any           // panicked with when set
	block    bool          // wait for ctx to end and return its error
	entered  chan struct{} // closed when a blocking call has started
	deadline time.Time     // the last call's context deadline
	// principal is the last call's identity.FromContext; hasPrincipal
	// false means the call reached the store unauthenticated.
	principal    identity.Principal
	hasPrincipal bool

	// canned outputs
	md       keystore.KeyMetadata
	encOut   keystore.EncryptOutput
	dkOut    keystore.GenerateDataKeyOutput
	pairOut  keystore.GenerateDataKeyPairOutput
	rotation keystore.RotationStatus
}

type fakeCall struct {
	op   string
	args any
}

var _ keystore.Service = (*fakeStore)(nil)

var fakeTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func newFakeStore() *fakeStore {
	return &fakeStore{
		md: keystore.KeyMetadata{
			KeyID: "k-1", KeyName: "meridian:key/k-1", Description: "d",
			KeySpec: keystore.SpecSymmetricDefault, KeyUsage: keystore.UsageEncryptDecrypt,
			KeyState: keystore.StateEnabled, Enabled: true, Origin: keystore.OriginMeridian,
			ProtectionLevel: keystore.ProtectionSoftware, CreationDate: fakeTime,
			RotationEnabled: true, RotationPeriodDays: 365, NextRotationDate: fakeTime.Add(24 * time.Hour),
			CurrentVersion:       3,
			EncryptionAlgorithms: []keystore.EncryptionAlgorithm{keystore.EncSymmetricDefault},
			MaxStaleness:         1500 * time.Millisecond,
		},
		encOut: keystore.EncryptOutput{CiphertextBlob: []byte("CIPHERTEXT-MARKER"), KeyID: "k-1", KeyVersion: 3,
			EncryptionAlgorithm: keystore.EncSymmetricDefault},
		dkOut:   keystore.GenerateDataKeyOutput{CiphertextBlob: []byte("ct"), Plaintext: []byte("DATA-KEY-PLAINTEXT"), KeyID: "k-1", KeyVersion: 1},
		pairOut: keystore.GenerateDataKeyPairOutput{PrivateKeyCiphertextBlob: []byte("ct"), PrivateKeyPlaintext: []byte("PRIVATE-KEY"), PublicKey: []byte("pub"), KeyID: "k-1", KeyVersion: 1, KeyPairSpec: keystore.PairECCP256},
		rotation: keystore.RotationStatus{KeyID: "k-1", RotationEnabled: true, RotationPeriodDays: 90,
			NextRotationDate: fakeTime},
	}
}

func (f *fakeStore) set(fn func(f *fakeStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeStore) lastCall() (fakeCall, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return fakeCall{}, 0
	}
	return f.calls[len(f.calls)-1], len(f.calls)
}

func (f *fakeStore) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// enter records the call and applies the injected behaviour.
func (f *fakeStore) enter(ctx context.Context, op string, args any) error {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{op, args})
	f.deadline, _ = ctx.Deadline()
	f.principal, f.hasPrincipal = identity.FromContext(ctx)
	err, p, block, entered := f.err, f.panicVal, f.block, f.entered
	f.mu.Unlock()
	if p != nil {
		panic(p)
	}
	if block {
		if entered != nil {
			close(entered)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (f *fakeStore) CreateKey(ctx context.Context, in keystore.CreateKeyInput) (keystore.KeyMetadata, keystore.WriteResult, error) {
	if err := f.enter(ctx, "CreateKey", []any{in, keystore.RequestFrom(ctx).ID}); err != nil {
		return keystore.KeyMetadata{}, keystore.WriteResult{}, err
	}
	return f.md, keystore.WriteResult{CommitIndex: 7}, nil
}

func (f *fakeStore) DescribeKey(ctx context.Context, keyID string) (keystore.KeyMetadata, error) {
	if err := f.enter(ctx, "DescribeKey", keyID); err != nil {
		return keystore.KeyMetadata{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md, nil
}

type listArgs struct {
	keyID  string
	limit  int
	marker string
}

func (f *fakeStore) ListKeys(ctx context.Context, limit int, marker string) (keystore.Page[keystore.KeyListEntry], error) {
	if err := f.enter(ctx, "ListKeys", listArgs{"", limit, marker}); err != nil {
		return keystore.Page[keystore.KeyListEntry]{}, err
	}
	return keystore.Page[keystore.KeyListEntry]{Items: []keystore.KeyListEntry{{KeyID: "k-1", KeyName: "meridian:key/k-1"}}, NextMarker: "m2", Truncated: true}, nil
}

// write records a write's arguments followed by the request id the
// context's keystore.Request carries (where the store takes it from).
func (f *fakeStore) write(ctx context.Context, op string, args ...any) (keystore.WriteResult, error) {
	if err := f.enter(ctx, op, append(args, keystore.RequestFrom(ctx).ID)); err != nil {
		return keystore.WriteResult{}, err
	}
	// The store resolves whatever the request named to the key's id.
	return keystore.WriteResult{CommitIndex: 42, KeyID: "k-resolved"}, nil
}

func (f *fakeStore) UpdateKeyDescription(ctx context.Context, keyID, description string) (keystore.WriteResult, error) {
	return f.write(ctx, "UpdateKeyDescription", keyID, description)
}

func (f *fakeStore) TagResource(ctx context.Context, keyID string, tags []keystore.Tag) (keystore.WriteResult, error) {
	return f.write(ctx, "TagResource", keyID, tags)
}

func (f *fakeStore) UntagResource(ctx context.Context, keyID string, tagKeys []string) (keystore.WriteResult, error) {
	return f.write(ctx, "UntagResource", keyID, tagKeys)
}

func (f *fakeStore) ListResourceTags(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.Tag], error) {
	if err := f.enter(ctx, "ListResourceTags", listArgs{keyID, limit, marker}); err != nil {
		return keystore.Page[keystore.Tag]{}, err
	}
	return keystore.Page[keystore.Tag]{Items: []keystore.Tag{{Key: "a", Value: "b"}}}, nil
}

func (f *fakeStore) CreateAlias(ctx context.Context, aliasName, targetKeyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "CreateAlias", aliasName, targetKeyID)
}

func (f *fakeStore) UpdateAlias(ctx context.Context, aliasName, targetKeyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "UpdateAlias", aliasName, targetKeyID)
}

func (f *fakeStore) DeleteAlias(ctx context.Context, aliasName string) (keystore.WriteResult, error) {
	return f.write(ctx, "DeleteAlias", aliasName)
}

func (f *fakeStore) ListAliases(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.AliasEntry], error) {
	if err := f.enter(ctx, "ListAliases", listArgs{keyID, limit, marker}); err != nil {
		return keystore.Page[keystore.AliasEntry]{}, err
	}
	return keystore.Page[keystore.AliasEntry]{Items: []keystore.AliasEntry{{AliasName: "alias/a", AliasFullName: "meridian:alias/a", TargetKeyID: "k-1", CreationDate: fakeTime}}}, nil
}

func (f *fakeStore) EnableKey(ctx context.Context, keyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "EnableKey", keyID)
}

func (f *fakeStore) DisableKey(ctx context.Context, keyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "DisableKey", keyID)
}

func (f *fakeStore) ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int) (keystore.ScheduleDeletionResult, error) {
	if err := f.enter(ctx, "ScheduleKeyDeletion", []any{keyID, pendingWindowDays, keystore.RequestFrom(ctx).ID}); err != nil {
		return keystore.ScheduleDeletionResult{}, err
	}
	return keystore.ScheduleDeletionResult{KeyID: keyID, DeletionDate: fakeTime, KeyState: keystore.StatePendingDeletion,
		PendingWindowDays: uint32(pendingWindowDays), WriteResult: keystore.WriteResult{CommitIndex: 9}}, nil
}

func (f *fakeStore) CancelKeyDeletion(ctx context.Context, keyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "CancelKeyDeletion", keyID)
}

func (f *fakeStore) EnableKeyRotation(ctx context.Context, keyID string, periodDays int) (keystore.WriteResult, error) {
	return f.write(ctx, "EnableKeyRotation", keyID, periodDays)
}

func (f *fakeStore) DisableKeyRotation(ctx context.Context, keyID string) (keystore.WriteResult, error) {
	return f.write(ctx, "DisableKeyRotation", keyID)
}

func (f *fakeStore) GetKeyRotationStatus(ctx context.Context, keyID string) (keystore.RotationStatus, error) {
	if err := f.enter(ctx, "GetKeyRotationStatus", keyID); err != nil {
		return keystore.RotationStatus{}, err
	}
	return f.rotation, nil
}

func (f *fakeStore) RotateKeyOnDemand(ctx context.Context, keyID string) (keystore.KeyRotation, keystore.WriteResult, error) {
	if err := f.enter(ctx, "RotateKeyOnDemand", []any{keyID, keystore.RequestFrom(ctx).ID}); err != nil {
		return keystore.KeyRotation{}, keystore.WriteResult{}, err
	}
	return keystore.KeyRotation{KeyID: keyID, KeyVersion: 4, RotationDate: fakeTime, RotationType: keystore.RotationOnDemand},
		keystore.WriteResult{CommitIndex: 11}, nil
}

func (f *fakeStore) ListKeyRotations(ctx context.Context, keyID string, limit int, marker string) (keystore.Page[keystore.KeyRotation], error) {
	if err := f.enter(ctx, "ListKeyRotations", listArgs{keyID, limit, marker}); err != nil {
		return keystore.Page[keystore.KeyRotation]{}, err
	}
	return keystore.Page[keystore.KeyRotation]{Items: []keystore.KeyRotation{
		{KeyID: keyID, KeyVersion: 2, RotationDate: fakeTime, RotationType: keystore.RotationAutomatic}}}, nil
}

func (f *fakeStore) Encrypt(ctx context.Context, in keystore.EncryptInput) (keystore.EncryptOutput, error) {
	if err := f.enter(ctx, "Encrypt", in); err != nil {
		return keystore.EncryptOutput{}, err
	}
	return f.encOut, nil
}

func (f *fakeStore) Decrypt(ctx context.Context, in keystore.DecryptInput) (keystore.DecryptOutput, error) {
	if err := f.enter(ctx, "Decrypt", in); err != nil {
		return keystore.DecryptOutput{}, err
	}
	return keystore.DecryptOutput{Plaintext: []byte("pt"), KeyID: "k-1", KeyVersion: 2, EncryptionAlgorithm: keystore.EncSymmetricDefault}, nil
}

func (f *fakeStore) ReEncrypt(ctx context.Context, in keystore.ReEncryptInput) (keystore.ReEncryptOutput, error) {
	if err := f.enter(ctx, "ReEncrypt", in); err != nil {
		return keystore.ReEncryptOutput{}, err
	}
	return keystore.ReEncryptOutput{CiphertextBlob: []byte("ct2"), SourceKeyID: "k-1", SourceKeyVersion: 1, KeyID: "k-2", KeyVersion: 5}, nil
}

func (f *fakeStore) GenerateDataKey(ctx context.Context, in keystore.GenerateDataKeyInput) (keystore.GenerateDataKeyOutput, error) {
	if err := f.enter(ctx, "GenerateDataKey", in); err != nil {
		return keystore.GenerateDataKeyOutput{}, err
	}
	return f.dkOut, nil
}

func (f *fakeStore) GenerateDataKeyPair(ctx context.Context, in keystore.GenerateDataKeyPairInput) (keystore.GenerateDataKeyPairOutput, error) {
	if err := f.enter(ctx, "GenerateDataKeyPair", in); err != nil {
		return keystore.GenerateDataKeyPairOutput{}, err
	}
	return f.pairOut, nil
}

func (f *fakeStore) Sign(ctx context.Context, in keystore.SignInput) (keystore.SignOutput, error) {
	if err := f.enter(ctx, "Sign", in); err != nil {
		return keystore.SignOutput{}, err
	}
	return keystore.SignOutput{Signature: []byte("sig"), KeyID: in.KeyID, KeyVersion: 1, SigningAlgorithm: in.SigningAlgorithm}, nil
}

func (f *fakeStore) Verify(ctx context.Context, in keystore.VerifyInput) (keystore.VerifyOutput, error) {
	if err := f.enter(ctx, "Verify", in); err != nil {
		return keystore.VerifyOutput{}, err
	}
	return keystore.VerifyOutput{SignatureValid: true, KeyID: in.KeyID, SigningAlgorithm: in.SigningAlgorithm}, nil
}

func (f *fakeStore) GetPublicKey(ctx context.Context, keyID string) (keystore.PublicKeyOutput, error) {
	if err := f.enter(ctx, "GetPublicKey", keyID); err != nil {
		return keystore.PublicKeyOutput{}, err
	}
	return keystore.PublicKeyOutput{KeyID: keyID, PublicKey: []byte("pub"), KeySpec: keystore.SpecRSA2048, KeyUsage: keystore.UsageSignVerify,
		KeyVersion: 1, SigningAlgorithms: []keystore.SigningAlgorithm{keystore.SignRSAPSSSHA256, keystore.SignRSAPKCS1SHA512}}, nil
}

func (f *fakeStore) GenerateMac(ctx context.Context, in keystore.MacInput) (keystore.MacOutput, error) {
	if err := f.enter(ctx, "GenerateMac", in); err != nil {
		return keystore.MacOutput{}, err
	}
	return keystore.MacOutput{Mac: []byte("mac"), KeyID: in.KeyID, KeyVersion: 1, MacAlgorithm: in.MacAlgorithm}, nil
}

func (f *fakeStore) VerifyMac(ctx context.Context, in keystore.MacInput) (keystore.MacOutput, error) {
	if err := f.enter(ctx, "VerifyMac", in); err != nil {
		return keystore.MacOutput{}, err
	}
	return keystore.MacOutput{MacValid: true, KeyID: in.KeyID, MacAlgorithm: in.MacAlgorithm}, nil
}

func (f *fakeStore) GenerateRandom(ctx context.Context, numberOfBytes int) ([]byte, error) {
	if err := f.enter(ctx, "GenerateRandom", numberOfBytes); err != nil {
		return nil, err
	}
	if numberOfBytes < 1 || numberOfBytes > 1024 {
		return nil, keystore.ErrValidation
	}
	return make([]byte, numberOfBytes), nil
}
