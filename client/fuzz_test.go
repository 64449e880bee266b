package client

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// FuzzUsableMembers feeds arbitrary Members answers (outside bytes: any
// node, or anything posing as one, can send them) through the filter that
// decides what the client routes to.
func FuzzUsableMembers(f *testing.F) {
	for _, resp := range []*apiv1.MembersResponse{
		{},
		{Members: []*apiv1.Member{{NodeId: "a", Region: "eu", ApiAddr: "127.0.0.1:1", Status: apiv1.MemberStatus_MEMBER_STATUS_ALIVE, Healthy: true}}},
		{Members: []*apiv1.Member{
			{NodeId: "a", ApiAddr: "h:1", Status: apiv1.MemberStatus_MEMBER_STATUS_DEAD},
			{NodeId: "b", ApiAddr: "h:1", Status: apiv1.MemberStatus_MEMBER_STATUS_SUSPECT},
			{NodeId: "c", ApiAddr: "h:1"},
			{NodeId: "d", Status: apiv1.MemberStatus_MEMBER_STATUS_LEFT},
			{NodeId: "e", ApiAddr: "[::1]:7400", Status: apiv1.MemberStatus(99)},
		}, LeaderId: "b", ServedBy: "c", AppliedIndex: 7},
	} {
		b, err := proto.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp apiv1.MembersResponse
		if proto.Unmarshal(data, &resp) != nil {
			return
		}
		seen := map[string]bool{}
		for _, m := range usableMembers(&resp) {
			switch {
			case m.GetApiAddr() == "":
				t.Fatalf("member %q without an address kept", m.GetNodeId())
			case m.GetStatus() == apiv1.MemberStatus_MEMBER_STATUS_DEAD || m.GetStatus() == apiv1.MemberStatus_MEMBER_STATUS_LEFT:
				t.Fatalf("member %q with status %v kept", m.GetNodeId(), m.GetStatus())
			case seen[m.GetApiAddr()]:
				t.Fatalf("address %q kept twice", m.GetApiAddr())
			}
			seen[m.GetApiAddr()] = true
		}
		// The router takes any such answer: no panic, every node ranked once.
		r := newRouter("eu", func(addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		})
		defer r.close()
		r.applyMembers(usableMembers(&resp))
		if got, want := len(r.current().routes), len(r.all()); got != want || got > len(seen) {
			t.Fatalf("%d routes for %d nodes (%d usable members)", got, want, len(seen))
		}
	})
}
