package fakekms

import (
	"bytes"
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// The fake knows one key, KnownKey, also by its name meridian:key/k-1 and
// as alias/orders; DescribeKey says NotFound for any other. Every other
// method takes any key id, so a test of a command's flags needs no setup;
// DisabledKey is the one Encrypt refuses.
const (
	KnownKey    = "k-1"
	KnownAlias  = "alias/orders"
	DisabledKey = "k-off"
)

// resolve names the key id a request's key resolves to, as a real node's
// answers do whatever alias or name the request gave.
func resolve(id string) string {
	if id == KnownAlias {
		return KnownKey
	}
	return strings.TrimPrefix(id, "meridian:key/")
}

// service implements the methods whose answers callers' tests read; the
// rest get defaultAnswer. It is apart from Server so that a test's handle
// on a node has no RPC methods to call by mistake.
type service struct {
	apiv1.UnimplementedKeyManagementServer
	s *Server
}

// defaultAnswer is an empty response of the method's type. A write's
// answer carries a commit index, and any answer with a key id the id the
// request's key resolved to, since callers print and track both.
func (s *Server) defaultAnswer(method string, req proto.Message) (any, error) {
	md := apiv1.File_api_meridian_v1_meridian_proto.Services().ByName("KeyManagement").Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, status.Errorf(codes.Unimplemented, "method %s not in the API", method)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := mt.New()
	fields := resp.Descriptor().Fields()
	if fd := fields.ByName("commit_index"); fd != nil {
		resp.Set(fd, protoreflect.ValueOfUint64(s.cluster.nextCommit()))
	}
	if fd := fields.ByName("key_id"); fd != nil {
		if id := requestKeyID(req); id != "" {
			resp.Set(fd, protoreflect.ValueOfString(resolve(id)))
		}
	}
	return resp.Interface(), nil
}

func requestKeyID(req proto.Message) string {
	r := req.ProtoReflect()
	for _, name := range []protoreflect.Name{"key_id", "target_key_id", "destination_key_id"} {
		if fd := r.Descriptor().Fields().ByName(name); fd != nil && r.Get(fd).String() != "" {
			return r.Get(fd).String()
		}
	}
	return ""
}

func (v *service) Members(context.Context, *apiv1.MembersRequest) (*apiv1.MembersResponse, error) {
	v.s.mu.Lock()
	applied := v.s.faults.AppliedIndex
	v.s.mu.Unlock()
	return v.s.cluster.membersAnswer(v.s.id, applied), nil
}

func (v *service) CreateKey(_ context.Context, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	spec := req.GetKeySpec()
	if spec == apiv1.KeySpec_KEY_SPEC_UNSPECIFIED {
		spec = apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT
	}
	id := v.s.cluster.newKeyID()
	return &apiv1.CreateKeyResponse{
		KeyMetadata: &apiv1.KeyMetadata{
			KeyId: id, KeyName: "meridian:key/" + id, Description: req.GetDescription(),
			KeySpec: spec, KeyState: apiv1.KeyState_KEY_STATE_ENABLED, Enabled: true,
		},
		CommitIndex: v.s.cluster.nextCommit(),
	}, nil
}

// DescribeKey shows KnownKey with fields away from their defaults (a
// Disabled state, a creation date, version 3), so an output test sees
// each one spelled.
func (v *service) DescribeKey(_ context.Context, req *apiv1.DescribeKeyRequest) (*apiv1.DescribeKeyResponse, error) {
	if resolve(req.GetKeyId()) != KnownKey {
		return nil, APIError(codes.NotFound, "NotFoundException", "key "+req.GetKeyId()+" not found")
	}
	return &apiv1.DescribeKeyResponse{KeyMetadata: &apiv1.KeyMetadata{
		KeyId: KnownKey, KeyName: "meridian:key/" + KnownKey, KeySpec: apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT,
		KeyUsage: apiv1.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT, KeyState: apiv1.KeyState_KEY_STATE_DISABLED,
		CreationDate: timestamppb.New(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)), CurrentKeyVersion: 3,
		EncryptionAlgorithms: []apiv1.EncryptionAlgorithm{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT},
	}}, nil
}

// ListKeys answers a truncated first page, so a test sees the marker.
func (v *service) ListKeys(context.Context, *apiv1.ListKeysRequest) (*apiv1.ListKeysResponse, error) {
	return &apiv1.ListKeysResponse{
		Keys:      []*apiv1.KeyListEntry{{KeyId: "k-1", KeyName: "meridian:key/k-1"}, {KeyId: "k-2", KeyName: "meridian:key/k-2"}},
		Truncated: true, NextMarker: "m-2",
	}, nil
}

// Encrypt's "ciphertext" is "ct:" and the plaintext: a test can check a
// caller's encoding both ways, and Decrypt needs no state.
func (v *service) Encrypt(_ context.Context, req *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	if req.GetKeyId() == DisabledKey {
		return nil, APIError(codes.FailedPrecondition, "DisabledException", "key "+DisabledKey+" is disabled")
	}
	return &apiv1.EncryptResponse{CiphertextBlob: append([]byte("ct:"), req.GetPlaintext()...), KeyId: resolve(req.GetKeyId()),
		KeyVersion: 1, EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT}, nil
}

// Decrypt takes any tag before the first colon, so a test may write a
// ciphertext by hand; one without a colon is invalid.
func (v *service) Decrypt(_ context.Context, req *apiv1.DecryptRequest) (*apiv1.DecryptResponse, error) {
	_, pt, ok := bytes.Cut(req.GetCiphertextBlob(), []byte(":"))
	if !ok {
		return nil, APIError(codes.InvalidArgument, "InvalidCiphertextException", "")
	}
	return &apiv1.DecryptResponse{Plaintext: pt, KeyId: KnownKey, KeyVersion: 1}, nil
}

func (v *service) GenerateDataKey(_ context.Context, req *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return &apiv1.GenerateDataKeyResponse{CiphertextBlob: []byte("ct:dk"), Plaintext: []byte("dk"), KeyId: resolve(req.GetKeyId())}, nil
}

// Verify and VerifyMac accept exactly the signature or MAC "good".
func (v *service) Verify(_ context.Context, req *apiv1.VerifyRequest) (*apiv1.VerifyResponse, error) {
	return &apiv1.VerifyResponse{SignatureValid: string(req.GetSignature()) == "good", KeyId: resolve(req.GetKeyId())}, nil
}

func (v *service) VerifyMac(_ context.Context, req *apiv1.VerifyMacRequest) (*apiv1.VerifyMacResponse, error) {
	return &apiv1.VerifyMacResponse{MacValid: string(req.GetMac()) == "good", KeyId: resolve(req.GetKeyId())}, nil
}
