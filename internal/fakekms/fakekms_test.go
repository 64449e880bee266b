package fakekms_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/internal/fakekms"
	"github.com/meridiankms/meridian/transport"
)

func TestHeaderAgreesWithClientAndTransport(t *testing.T) {
	for pkg, h := range map[string]string{"client": client.ConsistencyTokenHeader, "transport": transport.ConsistencyTokenHeader} {
		if h != fakekms.ConsistencyTokenHeader {
			t.Errorf("%s sends the token as %q, the fake reads %q", pkg, h, fakekms.ConsistencyTokenHeader)
		}
	}
}

func dial(t *testing.T, s *fakekms.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// invoke calls method with an empty request of its type.
func invoke(ctx context.Context, t *testing.T, conn *grpc.ClientConn, method string) (proto.Message, error) {
	t.Helper()
	md := apiv1.File_api_meridian_v1_meridian_proto.Services().ByName("KeyManagement").Methods().ByName(protoreflect.Name(method))
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	resp := out.New().Interface()
	return resp, conn.Invoke(ctx, "/"+apiv1.KeyManagement_ServiceDesc.ServiceName+"/"+method, in.New().Interface(), resp)
}

// Every method answers, so a caller's test of any command needs no stub;
// only the few with behaviour may refuse an empty request.
func TestEveryMethodAnswers(t *testing.T) {
	s := fakekms.Start(t, fakekms.Config{})
	s.RecordMembers(true)
	conn := dial(t, s)
	refuses := map[string]codes.Code{"DescribeKey": codes.NotFound, "Decrypt": codes.InvalidArgument}
	for _, m := range apiv1.KeyManagement_ServiceDesc.Methods {
		_, err := invoke(context.Background(), t, conn, m.MethodName)
		if got := status.Code(err); got != refuses[m.MethodName] {
			t.Errorf("%s: %v, want code %v", m.MethodName, err, refuses[m.MethodName])
		}
		if last := s.Last(t); last.Method != m.MethodName {
			t.Errorf("%s recorded as %s", m.MethodName, last.Method)
		}
	}
	if n := len(s.Calls()); n != len(apiv1.KeyManagement_ServiceDesc.Methods) {
		t.Fatalf("%d calls recorded, want one per method", n)
	}
}

// A write retried with its request id takes effect once and answers as the
// first time, even when the first answer was lost.
func TestWriteTakesEffectOnce(t *testing.T) {
	s := fakekms.Start(t, fakekms.Config{Faults: fakekms.Faults{AfterApply: 1}})
	api := apiv1.NewKeyManagementClient(dial(t, s))
	req := &apiv1.EnableKeyRequest{KeyId: fakekms.KnownAlias, RequestId: "r-1"}
	if _, err := api.EnableKey(context.Background(), req); status.Code(err) != codes.Unavailable {
		t.Fatalf("first attempt: %v, want the injected Unavailable", err)
	}
	first, err := api.EnableKey(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetKeyId() != fakekms.KnownKey || first.GetCommitIndex() != 1 {
		t.Fatalf("answer %v, want the resolved key and commit 1", first)
	}
	req.RequestId = "r-2"
	if second, err := api.EnableKey(context.Background(), req); err != nil || second.GetCommitIndex() != 2 {
		t.Fatalf("a new request id: %v, %v; want commit 2", second, err)
	}
	if ids := s.RequestIDs(); len(ids) != 3 || ids[0] != "r-1" || ids[2] != "r-2" {
		t.Fatalf("request ids %q", ids)
	}
}

// A node held back refuses tokens above its applied index and reports it.
func TestLaggingNodeRefusesLaterTokens(t *testing.T) {
	c := &fakekms.Cluster{}
	c.QueueCommits(50)
	s := fakekms.Start(t, fakekms.Config{ID: "n1", Cluster: c, Faults: fakekms.Faults{AppliedIndex: 10}})
	api := apiv1.NewKeyManagementClient(dial(t, s))
	if _, err := api.EnableKey(context.Background(), &apiv1.EnableKeyRequest{KeyId: "k"}); err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), fakekms.ConsistencyTokenHeader, "11")
	if _, err := api.ListKeys(ctx, &apiv1.ListKeysRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("token above the applied index: %v", err)
	}
	if s.Last(t).Token != "11" {
		t.Fatalf("token recorded as %q", s.Last(t).Token)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), fakekms.ConsistencyTokenHeader, "10")
	if _, err := api.ListKeys(ctx, &apiv1.ListKeysRequest{}); err != nil {
		t.Fatalf("token at the applied index: %v", err)
	}
	m, err := api.Members(context.Background(), &apiv1.MembersRequest{})
	if err != nil || m.GetAppliedIndex() != 10 || m.GetLeaderId() != "n1" || len(m.GetMembers()) != 1 {
		t.Fatalf("Members = %v, %v", m, err)
	}
	if s.Discoveries() != 1 || s.Count("Members") != 0 {
		t.Fatalf("unrecorded Members: %d discoveries, %d recorded", s.Discoveries(), s.Count("Members"))
	}
}
