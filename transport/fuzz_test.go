package transport

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// fuzzRPC fuzzes one request decoder end to end: arbitrary bytes are
// unmarshalled as the request (as gRPC would) and handed to the service
// method over a fake store, so the request conversion, the store call and
// the response conversion all run. Nothing may panic, and the only error a
// decoded request may cause is a ValidationException (an enum number this
// server does not know) or one the fake itself returns for a bad count.
func fuzzRPC[Req proto.Message, Resp any](f *testing.F, method func(*service, context.Context, Req) (Resp, error), seeds ...Req) {
	f.Helper()
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x07}) // field 2 varint MaxInt32: an unknown enum
	f.Fuzz(func(t *testing.T, data []byte) {
		req := seeds[0].ProtoReflect().New().Interface().(Req)
		if err := proto.Unmarshal(data, req); err != nil {
			return
		}
		svc := &service{ks: newFakeStore(), members: newFakeMembership(nil)}
		_, err := method(svc, context.Background(), req)
		if err != nil && !errors.Is(err, keystore.ErrValidation) {
			t.Fatalf("decoded request gave %v, want nil or ValidationException", err)
		}
	})
}

func FuzzMembersRequest(f *testing.F) {
	fuzzRPC(f, (*service).Members, &apiv1.MembersRequest{})
}

func FuzzCreateKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).CreateKey,
		&apiv1.CreateKeyRequest{Description: "d", KeySpec: apiv1.KeySpec_KEY_SPEC_RSA_2048, KeyUsage: apiv1.KeyUsage_KEY_USAGE_SIGN_VERIFY,
			Origin: apiv1.Origin_ORIGIN_MERIDIAN, ProtectionLevel: apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM,
			Tags: []*apiv1.Tag{{TagKey: "k", TagValue: "v"}}, RequestId: "r", MaxStaleness: durationpb.New(3 * time.Second)},
		&apiv1.CreateKeyRequest{KeySpec: 99},
		&apiv1.CreateKeyRequest{MaxStaleness: &durationpb.Duration{Seconds: -1, Nanos: 5}})
}

// FuzzConsistencyToken: the header parser never panics, accepts exactly the
// decimal uint64s (the highest of several wins) and keeps its error short
// whatever the client sent.
func FuzzConsistencyToken(f *testing.F) {
	for _, seed := range [][2]string{{"42", ""}, {"0", "7"}, {"18446744073709551615", "1"}, {"18446744073709551616", ""},
		{"-1", ""}, {"+5", ""}, {" 5", ""}, {"0x10", ""}, {"", ""}, {"007", "8"}, {strings.Repeat("9", 500), ""}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		values := []string{a}
		if b != "" {
			values = append(values, b)
		}
		got, err := parseConsistencyToken(values)
		var want uint64
		wantOK := true
		for _, v := range values {
			n, perr := strconv.ParseUint(v, 10, 64)
			if perr != nil {
				wantOK = false
				break
			}
			want = max(want, n)
		}
		if wantOK != (err == nil) || (wantOK && got != want) {
			t.Fatalf("parse %q = %d, %v; want %d ok=%v", values, got, err, want, wantOK)
		}
		if err != nil && len(err.Error()) > 200+len(ConsistencyTokenHeader) {
			t.Fatalf("error of %d bytes for %d-byte input", len(err.Error()), len(a)+len(b))
		}
	})
}

func FuzzDescribeKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).DescribeKey, &apiv1.DescribeKeyRequest{KeyId: "alias/a"})
}

func FuzzListKeysRequest(f *testing.F) {
	fuzzRPC(f, (*service).ListKeys, &apiv1.ListKeysRequest{Limit: 10, Marker: "m"})
}

func FuzzUpdateKeyDescriptionRequest(f *testing.F) {
	fuzzRPC(f, (*service).UpdateKeyDescription, &apiv1.UpdateKeyDescriptionRequest{KeyId: "k", Description: "d", RequestId: "r"})
}

func FuzzTagResourceRequest(f *testing.F) {
	fuzzRPC(f, (*service).TagResource, &apiv1.TagResourceRequest{KeyId: "k", Tags: []*apiv1.Tag{{TagKey: "a", TagValue: "b"}, {}}, RequestId: "r"})
}

func FuzzUntagResourceRequest(f *testing.F) {
	fuzzRPC(f, (*service).UntagResource, &apiv1.UntagResourceRequest{KeyId: "k", TagKeys: []string{"a", ""}, RequestId: "r"})
}

func FuzzListResourceTagsRequest(f *testing.F) {
	fuzzRPC(f, (*service).ListResourceTags, &apiv1.ListResourceTagsRequest{KeyId: "k", Limit: 4294967295, Marker: "m"})
}

func FuzzCreateAliasRequest(f *testing.F) {
	fuzzRPC(f, (*service).CreateAlias, &apiv1.CreateAliasRequest{AliasName: "alias/a", TargetKeyId: "k", RequestId: "r"})
}

func FuzzUpdateAliasRequest(f *testing.F) {
	fuzzRPC(f, (*service).UpdateAlias, &apiv1.UpdateAliasRequest{AliasName: "alias/a", TargetKeyId: "k", RequestId: "r"})
}

func FuzzDeleteAliasRequest(f *testing.F) {
	fuzzRPC(f, (*service).DeleteAlias, &apiv1.DeleteAliasRequest{AliasName: "alias/a", RequestId: "r"})
}

func FuzzListAliasesRequest(f *testing.F) {
	fuzzRPC(f, (*service).ListAliases, &apiv1.ListAliasesRequest{KeyId: "k", Limit: 1, Marker: "m"})
}

func FuzzEnableKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).EnableKey, &apiv1.EnableKeyRequest{KeyId: "k", RequestId: "r"})
}

func FuzzDisableKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).DisableKey, &apiv1.DisableKeyRequest{KeyId: "k", RequestId: "r"})
}

func FuzzScheduleKeyDeletionRequest(f *testing.F) {
	fuzzRPC(f, (*service).ScheduleKeyDeletion, &apiv1.ScheduleKeyDeletionRequest{KeyId: "k", PendingWindowInDays: 7, RequestId: "r"})
}

func FuzzCancelKeyDeletionRequest(f *testing.F) {
	fuzzRPC(f, (*service).CancelKeyDeletion, &apiv1.CancelKeyDeletionRequest{KeyId: "k", RequestId: "r"})
}

func FuzzEnableKeyRotationRequest(f *testing.F) {
	fuzzRPC(f, (*service).EnableKeyRotation, &apiv1.EnableKeyRotationRequest{KeyId: "k", RotationPeriodInDays: 2560, RequestId: "r"})
}

func FuzzDisableKeyRotationRequest(f *testing.F) {
	fuzzRPC(f, (*service).DisableKeyRotation, &apiv1.DisableKeyRotationRequest{KeyId: "k", RequestId: "r"})
}

func FuzzGetKeyRotationStatusRequest(f *testing.F) {
	fuzzRPC(f, (*service).GetKeyRotationStatus, &apiv1.GetKeyRotationStatusRequest{KeyId: "k"})
}

func FuzzRotateKeyOnDemandRequest(f *testing.F) {
	fuzzRPC(f, (*service).RotateKeyOnDemand, &apiv1.RotateKeyOnDemandRequest{KeyId: "k", RequestId: "r"})
}

func FuzzListKeyRotationsRequest(f *testing.F) {
	fuzzRPC(f, (*service).ListKeyRotations, &apiv1.ListKeyRotationsRequest{KeyId: "k", Limit: 100})
}

func FuzzEncryptRequest(f *testing.F) {
	fuzzRPC(f, (*service).Encrypt,
		&apiv1.EncryptRequest{KeyId: "k", Plaintext: []byte("hello"), EncryptionContext: map[string]string{"a": "b"},
			EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256},
		&apiv1.EncryptRequest{EncryptionAlgorithm: 42})
}

func FuzzDecryptRequest(f *testing.F) {
	fuzzRPC(f, (*service).Decrypt, &apiv1.DecryptRequest{CiphertextBlob: []byte{1, 2, 3}, EncryptionContext: map[string]string{"": ""},
		KeyId: "k", EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT})
}

func FuzzReEncryptRequest(f *testing.F) {
	fuzzRPC(f, (*service).ReEncrypt, &apiv1.ReEncryptRequest{CiphertextBlob: []byte{9}, SourceEncryptionContext: map[string]string{"a": "b"},
		SourceKeyId: "k1", SourceEncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1,
		DestinationKeyId: "k2", DestinationEncryptionContext: map[string]string{"c": "d"},
		DestinationEncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT})
}

var dataKeySeeds = []*apiv1.GenerateDataKeyRequest{
	{KeyId: "k", KeySpec: apiv1.DataKeySpec_DATA_KEY_SPEC_AES_128, EncryptionContext: map[string]string{"a": "b"}},
	{KeyId: "k", NumberOfBytes: 1024},
}

func FuzzGenerateDataKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateDataKey, dataKeySeeds...)
}

func FuzzGenerateDataKeyWithoutPlaintextRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateDataKeyWithoutPlaintext, dataKeySeeds...)
}

var pairSeeds = []*apiv1.GenerateDataKeyPairRequest{
	{KeyId: "k", KeyPairSpec: apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P521, EncryptionContext: map[string]string{"a": "b"}},
}

func FuzzGenerateDataKeyPairRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateDataKeyPair, pairSeeds...)
}

func FuzzGenerateDataKeyPairWithoutPlaintextRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateDataKeyPairWithoutPlaintext, pairSeeds...)
}

func FuzzSignRequest(f *testing.F) {
	fuzzRPC(f, (*service).Sign, &apiv1.SignRequest{KeyId: "k", Message: []byte("m"), MessageType: apiv1.MessageType_MESSAGE_TYPE_DIGEST,
		SigningAlgorithm: apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_256})
}

func FuzzVerifyRequest(f *testing.F) {
	fuzzRPC(f, (*service).Verify, &apiv1.VerifyRequest{KeyId: "k", Message: []byte("m"), MessageType: apiv1.MessageType_MESSAGE_TYPE_RAW,
		Signature: []byte("s"), SigningAlgorithm: apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_384})
}

func FuzzGetPublicKeyRequest(f *testing.F) {
	fuzzRPC(f, (*service).GetPublicKey, &apiv1.GetPublicKeyRequest{KeyId: "k"})
}

func FuzzGenerateMacRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateMac, &apiv1.GenerateMacRequest{KeyId: "k", Message: []byte("m"), MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_384})
}

func FuzzVerifyMacRequest(f *testing.F) {
	fuzzRPC(f, (*service).VerifyMac, &apiv1.VerifyMacRequest{KeyId: "k", Message: []byte("m"), Mac: []byte("x"), MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_256})
}

func FuzzGenerateRandomRequest(f *testing.F) {
	fuzzRPC(f, (*service).GenerateRandom, &apiv1.GenerateRandomRequest{NumberOfBytes: 32})
}

// Every KeyManagement method has a fuzz target above, named after it.
func TestEveryMethodFuzzed(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "fuzz_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, d := range file.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok {
			targets[fn.Name.Name] = true
		}
	}
	for _, m := range apiv1.KeyManagement_ServiceDesc.Methods {
		if !targets["Fuzz"+m.MethodName+"Request"] {
			t.Errorf("no Fuzz%sRequest", m.MethodName)
		}
	}
}
