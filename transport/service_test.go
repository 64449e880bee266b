package transport

import (
	"context"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

type rpcCase struct {
	name     string
	call     func(context.Context, apiv1.KeyManagementClient) (proto.Message, error)
	wantOp   string
	wantArgs any
	check    func(t *testing.T, resp proto.Message)
}

// rpc binds a client method expression to a request.
func rpc[Req, Resp proto.Message](m func(apiv1.KeyManagementClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) func(context.Context, apiv1.KeyManagementClient) (proto.Message, error) {
	return func(ctx context.Context, c apiv1.KeyManagementClient) (proto.Message, error) {
		return m(c, ctx, req)
	}
}

var ec = map[string]string{"purpose": "test"}

// rpcCases covers every KeyManagement method: the store must receive exactly
// the request's fields in keystore form.
func rpcCases() []rpcCase {
	return []rpcCase{
		{name: "Members", call: rpc(apiv1.KeyManagementClient.Members, &apiv1.MembersRequest{}),
			wantOp: "Members", wantArgs: nil,
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.MembersResponse)
				if len(r.GetMembers()) != 3 || r.GetLeaderId() != "n1" || r.GetServedBy() != "n2" || r.GetAppliedIndex() != 77 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "CreateKey", call: rpc(apiv1.KeyManagementClient.CreateKey, &apiv1.CreateKeyRequest{
			Description: "d", KeySpec: apiv1.KeySpec_KEY_SPEC_HMAC_384, KeyUsage: apiv1.KeyUsage_KEY_USAGE_GENERATE_VERIFY_MAC,
			Origin: apiv1.Origin_ORIGIN_MERIDIAN, ProtectionLevel: apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM,
			Tags: []*apiv1.Tag{{TagKey: "team", TagValue: "x"}}, RequestId: "r1", MaxStaleness: durationpb.New(90 * time.Second)}),
			wantOp: "CreateKey", wantArgs: []any{keystore.CreateKeyInput{Description: "d", KeySpec: keystore.SpecHMAC384,
				KeyUsage: keystore.UsageGenerateVerifyMAC, Origin: keystore.OriginMeridian, ProtectionLevel: keystore.ProtectionHSM,
				Tags: []keystore.Tag{{Key: "team", Value: "x"}}, MaxStaleness: 90 * time.Second}, "r1"},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.CreateKeyResponse)
				if r.GetCommitIndex() != 7 || r.GetKeyMetadata().GetKeyId() != "k-1" ||
					r.GetKeyMetadata().GetMaxStaleness().AsDuration() != 1500*time.Millisecond {
					t.Errorf("response %v", r)
				}
			}},
		{name: "CreateKeyDefaults", call: rpc(apiv1.KeyManagementClient.CreateKey, &apiv1.CreateKeyRequest{}),
			wantOp: "CreateKey", wantArgs: []any{keystore.CreateKeyInput{}, ""}},
		{name: "DescribeKey", call: rpc(apiv1.KeyManagementClient.DescribeKey, &apiv1.DescribeKeyRequest{KeyId: "k-1"}),
			wantOp: "DescribeKey", wantArgs: "k-1"},
		{name: "ListKeys", call: rpc(apiv1.KeyManagementClient.ListKeys, &apiv1.ListKeysRequest{Limit: 5, Marker: "m"}),
			wantOp: "ListKeys", wantArgs: listArgs{"", 5, "m"},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.ListKeysResponse)
				if len(r.GetKeys()) != 1 || r.GetKeys()[0].GetKeyName() != "meridian:key/k-1" || r.GetNextMarker() != "m2" || !r.GetTruncated() {
					t.Errorf("response %v", r)
				}
			}},
		{name: "UpdateKeyDescription", call: rpc(apiv1.KeyManagementClient.UpdateKeyDescription, &apiv1.UpdateKeyDescriptionRequest{KeyId: "k-1", Description: "new", RequestId: "r"}),
			wantOp: "UpdateKeyDescription", wantArgs: []any{"k-1", "new", "r"}, check: commit42},
		{name: "TagResource", call: rpc(apiv1.KeyManagementClient.TagResource, &apiv1.TagResourceRequest{KeyId: "k-1", Tags: []*apiv1.Tag{{TagKey: "a", TagValue: "b"}, {TagKey: "c"}}, RequestId: "r"}),
			wantOp: "TagResource", wantArgs: []any{"k-1", []keystore.Tag{{Key: "a", Value: "b"}, {Key: "c"}}, "r"}, check: commit42},
		{name: "UntagResource", call: rpc(apiv1.KeyManagementClient.UntagResource, &apiv1.UntagResourceRequest{KeyId: "k-1", TagKeys: []string{"a", "c"}, RequestId: "r"}),
			wantOp: "UntagResource", wantArgs: []any{"k-1", []string{"a", "c"}, "r"}, check: commit42},
		{name: "ListResourceTags", call: rpc(apiv1.KeyManagementClient.ListResourceTags, &apiv1.ListResourceTagsRequest{KeyId: "k-1", Limit: 1000, Marker: "x"}),
			wantOp: "ListResourceTags", wantArgs: listArgs{"k-1", 1000, "x"},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.ListResourceTagsResponse); len(r.GetTags()) != 1 || r.GetTags()[0].GetTagValue() != "b" {
					t.Errorf("response %v", r)
				}
			}},
		{name: "CreateAlias", call: rpc(apiv1.KeyManagementClient.CreateAlias, &apiv1.CreateAliasRequest{AliasName: "alias/a", TargetKeyId: "k-1", RequestId: "r"}),
			wantOp: "CreateAlias", wantArgs: []any{"alias/a", "k-1", "r"}, check: commit42},
		{name: "UpdateAlias", call: rpc(apiv1.KeyManagementClient.UpdateAlias, &apiv1.UpdateAliasRequest{AliasName: "alias/a", TargetKeyId: "k-2", RequestId: "r"}),
			wantOp: "UpdateAlias", wantArgs: []any{"alias/a", "k-2", "r"}, check: commit42},
		{name: "DeleteAlias", call: rpc(apiv1.KeyManagementClient.DeleteAlias, &apiv1.DeleteAliasRequest{AliasName: "alias/a", RequestId: "r"}),
			wantOp: "DeleteAlias", wantArgs: []any{"alias/a", "r"}, check: commit42},
		{name: "ListAliases", call: rpc(apiv1.KeyManagementClient.ListAliases, &apiv1.ListAliasesRequest{KeyId: "k-1", Limit: 2}),
			wantOp: "ListAliases", wantArgs: listArgs{"k-1", 2, ""},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.ListAliasesResponse)
				if len(r.GetAliases()) != 1 || r.GetAliases()[0].GetAliasFullName() != "meridian:alias/a" ||
					!r.GetAliases()[0].GetCreationDate().AsTime().Equal(fakeTime) || r.GetAliases()[0].GetLastUpdatedDate() != nil {
					t.Errorf("response %v", r)
				}
			}},
		{name: "EnableKey", call: rpc(apiv1.KeyManagementClient.EnableKey, &apiv1.EnableKeyRequest{KeyId: "k-1", RequestId: "r"}),
			wantOp: "EnableKey", wantArgs: []any{"k-1", "r"}, check: commit42},
		{name: "DisableKey", call: rpc(apiv1.KeyManagementClient.DisableKey, &apiv1.DisableKeyRequest{KeyId: "k-1", RequestId: "r"}),
			wantOp: "DisableKey", wantArgs: []any{"k-1", "r"}, check: commit42},
		{name: "ScheduleKeyDeletion", call: rpc(apiv1.KeyManagementClient.ScheduleKeyDeletion, &apiv1.ScheduleKeyDeletionRequest{KeyId: "k-1", PendingWindowInDays: 7, RequestId: "r"}),
			wantOp: "ScheduleKeyDeletion", wantArgs: []any{"k-1", 7, "r"},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.ScheduleKeyDeletionResponse)
				if r.GetKeyState() != apiv1.KeyState_KEY_STATE_PENDING_DELETION || r.GetPendingWindowInDays() != 7 ||
					!r.GetDeletionDate().AsTime().Equal(fakeTime) || r.GetCommitIndex() != 9 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "CancelKeyDeletion", call: rpc(apiv1.KeyManagementClient.CancelKeyDeletion, &apiv1.CancelKeyDeletionRequest{KeyId: "k-1", RequestId: "r"}),
			wantOp: "CancelKeyDeletion", wantArgs: []any{"k-1", "r"},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.CancelKeyDeletionResponse); r.GetKeyId() != "k-resolved" || r.GetCommitIndex() != 42 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "EnableKeyRotation", call: rpc(apiv1.KeyManagementClient.EnableKeyRotation, &apiv1.EnableKeyRotationRequest{KeyId: "k-1", RotationPeriodInDays: 90, RequestId: "r"}),
			wantOp: "EnableKeyRotation", wantArgs: []any{"k-1", 90, "r"}, check: commit42},
		{name: "DisableKeyRotation", call: rpc(apiv1.KeyManagementClient.DisableKeyRotation, &apiv1.DisableKeyRotationRequest{KeyId: "k-1", RequestId: "r"}),
			wantOp: "DisableKeyRotation", wantArgs: []any{"k-1", "r"}, check: commit42},
		{name: "GetKeyRotationStatus", call: rpc(apiv1.KeyManagementClient.GetKeyRotationStatus, &apiv1.GetKeyRotationStatusRequest{KeyId: "k-1"}),
			wantOp: "GetKeyRotationStatus", wantArgs: "k-1",
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.GetKeyRotationStatusResponse)
				if !r.GetKeyRotationEnabled() || r.GetRotationPeriodInDays() != 90 || r.GetOnDemandRotationStartDate() != nil ||
					!r.GetNextRotationDate().AsTime().Equal(fakeTime) {
					t.Errorf("response %v", r)
				}
			}},
		{name: "RotateKeyOnDemand", call: rpc(apiv1.KeyManagementClient.RotateKeyOnDemand, &apiv1.RotateKeyOnDemandRequest{KeyId: "k-1", RequestId: "r"}),
			wantOp: "RotateKeyOnDemand", wantArgs: []any{"k-1", "r"},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.RotateKeyOnDemandResponse); r.GetKeyVersion() != 4 || r.GetCommitIndex() != 11 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "ListKeyRotations", call: rpc(apiv1.KeyManagementClient.ListKeyRotations, &apiv1.ListKeyRotationsRequest{KeyId: "k-1", Marker: "m"}),
			wantOp: "ListKeyRotations", wantArgs: listArgs{"k-1", 0, "m"},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.ListKeyRotationsResponse)
				if len(r.GetRotations()) != 1 || r.GetRotations()[0].GetRotationType() != apiv1.RotationType_ROTATION_TYPE_AUTOMATIC {
					t.Errorf("response %v", r)
				}
			}},
		{name: "Encrypt", call: rpc(apiv1.KeyManagementClient.Encrypt, &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("pt"), EncryptionContext: ec,
			EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256}),
			wantOp: "Encrypt", wantArgs: keystore.EncryptInput{KeyID: "k-1", Plaintext: []byte("pt"), EncryptionContext: ec,
				EncryptionAlgorithm: keystore.EncRSAOAEPSHA256},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.EncryptResponse)
				if string(r.GetCiphertextBlob()) != "CIPHERTEXT-MARKER" || r.GetKeyVersion() != 3 ||
					r.GetEncryptionAlgorithm() != apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT {
					t.Errorf("response %v", r)
				}
			}},
		{name: "Decrypt", call: rpc(apiv1.KeyManagementClient.Decrypt, &apiv1.DecryptRequest{CiphertextBlob: []byte("ct"), EncryptionContext: ec, KeyId: "k-1",
			EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1}),
			wantOp: "Decrypt", wantArgs: keystore.DecryptInput{CiphertextBlob: []byte("ct"), EncryptionContext: ec, KeyID: "k-1",
				EncryptionAlgorithm: keystore.EncRSAOAEPSHA1},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.DecryptResponse); string(r.GetPlaintext()) != "pt" || r.GetKeyVersion() != 2 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "ReEncrypt", call: rpc(apiv1.KeyManagementClient.ReEncrypt, &apiv1.ReEncryptRequest{CiphertextBlob: []byte("ct"), SourceEncryptionContext: ec,
			SourceKeyId: "k-1", DestinationKeyId: "k-2", DestinationEncryptionContext: map[string]string{"d": "e"},
			DestinationEncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT}),
			wantOp: "ReEncrypt", wantArgs: keystore.ReEncryptInput{CiphertextBlob: []byte("ct"), SourceEncryptionContext: ec, SourceKeyID: "k-1",
				DestinationKeyID: "k-2", DestinationEncryptionContext: map[string]string{"d": "e"}, DestinationEncryptionAlgorithm: keystore.EncSymmetricDefault},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.ReEncryptResponse); r.GetSourceKeyVersion() != 1 || r.GetKeyId() != "k-2" || r.GetKeyVersion() != 5 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateDataKey", call: rpc(apiv1.KeyManagementClient.GenerateDataKey, &apiv1.GenerateDataKeyRequest{KeyId: "k-1", KeySpec: apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256, EncryptionContext: ec}),
			wantOp: "GenerateDataKey", wantArgs: keystore.GenerateDataKeyInput{KeyID: "k-1", KeySpec: keystore.DataKeyAES256, EncryptionContext: ec},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.GenerateDataKeyResponse); string(r.GetPlaintext()) != "DATA-KEY-PLAINTEXT" {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateDataKeyWithoutPlaintext", call: rpc(apiv1.KeyManagementClient.GenerateDataKeyWithoutPlaintext, &apiv1.GenerateDataKeyRequest{KeyId: "k-1", NumberOfBytes: 64}),
			wantOp: "GenerateDataKey", wantArgs: keystore.GenerateDataKeyInput{KeyID: "k-1", NumberOfBytes: 64, WithoutPlaintext: true},
			check: func(t *testing.T, m proto.Message) {
				// The fake returns plaintext anyway: the service must drop it.
				if r := m.(*apiv1.GenerateDataKeyResponse); r.GetPlaintext() != nil || string(r.GetCiphertextBlob()) != "ct" {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateDataKeyPair", call: rpc(apiv1.KeyManagementClient.GenerateDataKeyPair, &apiv1.GenerateDataKeyPairRequest{KeyId: "k-1", KeyPairSpec: apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_RSA_4096}),
			wantOp: "GenerateDataKeyPair", wantArgs: keystore.GenerateDataKeyPairInput{KeyID: "k-1", KeyPairSpec: keystore.PairRSA4096},
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.GenerateDataKeyPairResponse)
				if string(r.GetPrivateKeyPlaintext()) != "PRIVATE-KEY" || r.GetKeyPairSpec() != apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P256 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateDataKeyPairWithoutPlaintext", call: rpc(apiv1.KeyManagementClient.GenerateDataKeyPairWithoutPlaintext, &apiv1.GenerateDataKeyPairRequest{KeyId: "k-1", EncryptionContext: ec}),
			wantOp: "GenerateDataKeyPair", wantArgs: keystore.GenerateDataKeyPairInput{KeyID: "k-1", EncryptionContext: ec, WithoutPlaintext: true},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.GenerateDataKeyPairResponse); r.GetPrivateKeyPlaintext() != nil || string(r.GetPublicKey()) != "pub" {
					t.Errorf("response %v", r)
				}
			}},
		{name: "Sign", call: rpc(apiv1.KeyManagementClient.Sign, &apiv1.SignRequest{KeyId: "k-1", Message: []byte("m"), MessageType: apiv1.MessageType_MESSAGE_TYPE_DIGEST,
			SigningAlgorithm: apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_384}),
			wantOp: "Sign", wantArgs: keystore.SignInput{KeyID: "k-1", Message: []byte("m"), MessageType: keystore.MessageDigest, SigningAlgorithm: keystore.SignECDSASHA384},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.SignResponse); string(r.GetSignature()) != "sig" || r.GetSigningAlgorithm() != apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_384 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "Verify", call: rpc(apiv1.KeyManagementClient.Verify, &apiv1.VerifyRequest{KeyId: "k-1", Message: []byte("m"), Signature: []byte("s"),
			SigningAlgorithm: apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PSS_SHA_512}),
			wantOp: "Verify", wantArgs: keystore.VerifyInput{KeyID: "k-1", Message: []byte("m"), Signature: []byte("s"), SigningAlgorithm: keystore.SignRSAPSSSHA512},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.VerifyResponse); !r.GetSignatureValid() {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GetPublicKey", call: rpc(apiv1.KeyManagementClient.GetPublicKey, &apiv1.GetPublicKeyRequest{KeyId: "k-1"}),
			wantOp: "GetPublicKey", wantArgs: "k-1",
			check: func(t *testing.T, m proto.Message) {
				r := m.(*apiv1.GetPublicKeyResponse)
				if r.GetKeySpec() != apiv1.KeySpec_KEY_SPEC_RSA_2048 || r.GetKeyUsage() != apiv1.KeyUsage_KEY_USAGE_SIGN_VERIFY ||
					!reflect.DeepEqual(r.GetSigningAlgorithms(), []apiv1.SigningAlgorithm{
						apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PSS_SHA_256, apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_512}) {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateMac", call: rpc(apiv1.KeyManagementClient.GenerateMac, &apiv1.GenerateMacRequest{KeyId: "k-1", Message: []byte("m"), MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_512}),
			wantOp: "GenerateMac", wantArgs: keystore.MacInput{KeyID: "k-1", Message: []byte("m"), MacAlgorithm: keystore.MacHMACSHA512},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.GenerateMacResponse); string(r.GetMac()) != "mac" || r.GetMacAlgorithm() != apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_512 {
					t.Errorf("response %v", r)
				}
			}},
		{name: "VerifyMac", call: rpc(apiv1.KeyManagementClient.VerifyMac, &apiv1.VerifyMacRequest{KeyId: "k-1", Message: []byte("m"), Mac: []byte("x"), MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_256}),
			wantOp: "VerifyMac", wantArgs: keystore.MacInput{KeyID: "k-1", Message: []byte("m"), Mac: []byte("x"), MacAlgorithm: keystore.MacHMACSHA256},
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.VerifyMacResponse); !r.GetMacValid() {
					t.Errorf("response %v", r)
				}
			}},
		{name: "GenerateRandom", call: rpc(apiv1.KeyManagementClient.GenerateRandom, &apiv1.GenerateRandomRequest{NumberOfBytes: 32}),
			wantOp: "GenerateRandom", wantArgs: 32,
			check: func(t *testing.T, m proto.Message) {
				if r := m.(*apiv1.GenerateRandomResponse); len(r.GetPlaintext()) != 32 {
					t.Errorf("response %v", r)
				}
			}},
	}
}

// commit42 checks a WriteResponse carries the store's commit index and the
// key id the store resolved (not the request's own key reference).
func commit42(t *testing.T, m proto.Message) {
	if r := m.(*apiv1.WriteResponse); r.GetCommitIndex() != 42 || r.GetKeyId() != "k-resolved" {
		t.Errorf("commit index %d, key id %q; want 42, k-resolved", r.GetCommitIndex(), r.GetKeyId())
	}
}

func TestEveryRPCReachesStore(t *testing.T) {
	h := newHarness(t)
	seen := map[string]bool{}
	for _, tc := range rpcCases() {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.call(testCtx(t), h.client)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			c, _ := h.store.lastCall()
			if c.op != tc.wantOp || !reflect.DeepEqual(c.args, tc.wantArgs) {
				t.Errorf("store got %s %#v\nwant %s %#v", c.op, c.args, tc.wantOp, tc.wantArgs)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
		seen[operationFromCase(tc.name)] = true
	}
	for _, m := range apiv1.KeyManagement_ServiceDesc.Methods {
		if !seen[m.MethodName] {
			t.Errorf("no test case for %s", m.MethodName)
		}
	}
}

func operationFromCase(name string) string {
	if name == "CreateKeyDefaults" {
		return "CreateKey"
	}
	return name
}
