package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// fakeKMS answers every RPC: the few with behaviour the CLI tests need are
// implemented below, the rest return an empty response of the right type.
// It records each call's method and request.
type fakeKMS struct {
	apiv1.UnimplementedKeyManagementServer

	// recordMembers: Members calls are recorded only when a test asks,
	// since the client also calls it for discovery.
	recordMembers atomic.Bool
	// discoveries counts the client's discovery calls (unrecorded
	// Members); they answer with no members unless discover is set.
	discoveries atomic.Int32
	discover    atomic.Bool
	addr        string // where the fake listens: its one member's API address

	mu      sync.Mutex
	tokens  []string // consistency-token header of each recorded call
	methods []string
	reqs    []proto.Message
}

func (f *fakeKMS) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	name := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	if name == "Members" && !f.recordMembers.Load() {
		// The client's own discovery call, not a command's: not recorded.
		f.discoveries.Add(1)
		if f.discover.Load() {
			return f.Members(ctx, nil)
		}
		return &apiv1.MembersResponse{}, nil
	}
	f.mu.Lock()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		f.tokens = append(f.tokens, strings.Join(md.Get("x-meridian-consistency-token"), ","))
	}
	f.methods = append(f.methods, name)
	f.reqs = append(f.reqs, proto.Clone(req.(proto.Message)))
	f.mu.Unlock()
	resp, err := h(ctx, req)
	if status.Code(err) != codes.Unimplemented {
		return resp, err
	}
	md := apiv1.File_api_meridian_v1_meridian_proto.Services().ByName("KeyManagement").Methods().ByName(protoreflect.Name(name))
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, err
	}
	// Key writes answer with the id the server resolved the key to, as a
	// real node does whatever alias or name the request gave.
	switch resp := mt.New().Interface().(type) {
	case *apiv1.WriteResponse:
		resp.KeyId, resp.CommitIndex = "k-1", 7
		return resp, nil
	case *apiv1.CancelKeyDeletionResponse:
		resp.KeyId, resp.CommitIndex = "k-1", 7
		return resp, nil
	default:
		return resp, nil
	}
}

// last returns the most recent call's method and request.
func (f *fakeKMS) last(t *testing.T) (string, proto.Message) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.methods) == 0 {
		t.Fatal("the server saw no call")
	}
	return f.methods[len(f.methods)-1], f.reqs[len(f.reqs)-1]
}

func (f *fakeKMS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.methods)
}

func apiError(code codes.Code, exception, msg string) error {
	st, err := status.New(code, msg).WithDetails(&apiv1.ErrorInfo{Exception: exception})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func (f *fakeKMS) CreateKey(_ context.Context, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	spec := req.GetKeySpec()
	if spec == 0 {
		spec = apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT
	}
	return &apiv1.CreateKeyResponse{
		KeyMetadata: &apiv1.KeyMetadata{
			KeyId: "k-1", KeyName: "meridian:key/k-1", Description: req.GetDescription(),
			KeySpec: spec, KeyState: apiv1.KeyState_KEY_STATE_ENABLED, Enabled: true,
		},
		CommitIndex: 42,
	}, nil
}

// DescribeKey knows k-1, a disabled symmetric key, also as alias/orders.
func (f *fakeKMS) DescribeKey(_ context.Context, req *apiv1.DescribeKeyRequest) (*apiv1.DescribeKeyResponse, error) {
	if req.GetKeyId() != "k-1" && req.GetKeyId() != "alias/orders" {
		return nil, apiError(codes.NotFound, "NotFoundException", "key "+req.GetKeyId()+" not found")
	}
	return &apiv1.DescribeKeyResponse{KeyMetadata: &apiv1.KeyMetadata{
		KeyId: "k-1", KeyName: "meridian:key/k-1", KeySpec: apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT,
		KeyUsage: apiv1.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT, KeyState: apiv1.KeyState_KEY_STATE_DISABLED,
		CreationDate: timestamppb.New(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)), CurrentKeyVersion: 3,
		EncryptionAlgorithms: []apiv1.EncryptionAlgorithm{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT},
	}}, nil
}

// Members answers for a one-node cluster (when a test records Members).
func (f *fakeKMS) Members(context.Context, *apiv1.MembersRequest) (*apiv1.MembersResponse, error) {
	return &apiv1.MembersResponse{ServedBy: "n1", LeaderId: "n1", AppliedIndex: 19, Members: []*apiv1.Member{{
		NodeId: "n1", Region: "us-east", Zone: "a", ApiAddr: f.addr, Role: apiv1.MemberRole_MEMBER_ROLE_VOTER,
		Leader: true, Status: apiv1.MemberStatus_MEMBER_STATUS_ALIVE, Healthy: true, BuildVersion: "v1.2.3",
	}}}, nil
}

// Encrypt's "ciphertext" is "ct:" + plaintext: enough to check the CLI's
// encoding in both directions. Key k-off is disabled.
func (f *fakeKMS) Encrypt(_ context.Context, req *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	if req.GetKeyId() == "k-off" {
		return nil, apiError(codes.FailedPrecondition, "DisabledException", "key k-off is disabled")
	}
	return &apiv1.EncryptResponse{CiphertextBlob: append([]byte("ct:"), req.GetPlaintext()...), KeyId: "k-1", KeyVersion: 1,
		EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, req *apiv1.DecryptRequest) (*apiv1.DecryptResponse, error) {
	pt, ok := bytes.CutPrefix(req.GetCiphertextBlob(), []byte("ct:"))
	if !ok {
		return nil, apiError(codes.InvalidArgument, "InvalidCiphertextException", "")
	}
	return &apiv1.DecryptResponse{Plaintext: pt, KeyId: "k-1", KeyVersion: 1}, nil
}

func (f *fakeKMS) GenerateDataKey(context.Context, *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return &apiv1.GenerateDataKeyResponse{CiphertextBlob: []byte("ct:dk"), Plaintext: []byte("dk"), KeyId: "k-1"}, nil
}

func (f *fakeKMS) Verify(_ context.Context, req *apiv1.VerifyRequest) (*apiv1.VerifyResponse, error) {
	return &apiv1.VerifyResponse{SignatureValid: string(req.GetSignature()) == "good", KeyId: "k-1"}, nil
}

func (f *fakeKMS) VerifyMac(_ context.Context, req *apiv1.VerifyMacRequest) (*apiv1.VerifyMacResponse, error) {
	return &apiv1.VerifyMacResponse{MacValid: string(req.GetMac()) == "good", KeyId: "k-1"}, nil
}

func (f *fakeKMS) ListKeys(context.Context, *apiv1.ListKeysRequest) (*apiv1.ListKeysResponse, error) {
	return &apiv1.ListKeysResponse{
		Keys:      []*apiv1.KeyListEntry{{KeyId: "k-1", KeyName: "meridian:key/k-1"}, {KeyId: "k-2", KeyName: "meridian:key/k-2"}},
		Truncated: true, NextMarker: "m-2",
	}, nil
}

// startFake serves a fakeKMS on a fresh 127.0.0.1 port until the test ends.
func startFake(t *testing.T) (*fakeKMS, string) {
	t.Helper()
	f := &fakeKMS{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	apiv1.RegisterKeyManagementServer(srv, f)
	f.addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, f.addr
}

// cli runs one command line in-process, as main would.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// keyCLI runs `meridian key <args> --insecure --addr addr`.
func keyCLI(t *testing.T, addr, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return cli(t, stdin, append(append([]string{"key"}, args...), "--insecure", "--addr", addr)...)
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
