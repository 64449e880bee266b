package transport

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// Every role and status crosses the wire with every other field intact.
// The expected api values are spelled out here rather than read from the
// conversion tables, so a wrong row fails.
func TestMembersConversion(t *testing.T) {
	roles := map[MemberRole]apiv1.MemberRole{
		"":           apiv1.MemberRole_MEMBER_ROLE_UNSPECIFIED,
		RoleVoter:    apiv1.MemberRole_MEMBER_ROLE_VOTER,
		RoleNonvoter: apiv1.MemberRole_MEMBER_ROLE_NONVOTER,
		RoleNone:     apiv1.MemberRole_MEMBER_ROLE_NONE,
	}
	statuses := map[MemberStatus]apiv1.MemberStatus{
		"":            apiv1.MemberStatus_MEMBER_STATUS_UNSPECIFIED,
		StatusAlive:   apiv1.MemberStatus_MEMBER_STATUS_ALIVE,
		StatusSuspect: apiv1.MemberStatus_MEMBER_STATUS_SUSPECT,
		StatusDead:    apiv1.MemberStatus_MEMBER_STATUS_DEAD,
		StatusLeft:    apiv1.MemberStatus_MEMBER_STATUS_LEFT,
	}
	var view MembersView
	type want struct {
		role   apiv1.MemberRole
		status apiv1.MemberStatus
	}
	var wants []want
	i := 0
	for r, ar := range roles {
		for st, ast := range statuses {
			i++
			view.Members = append(view.Members, Member{
				NodeID: "n" + string(rune('a'+i%26)) + string(r) + string(st), Region: "r-" + string(st), Zone: "z-" + string(r),
				APIAddr: "127.0.0.1:74" + string(rune('0'+i%10)), Role: r, Leader: i == 3, Status: st,
				Healthy: i%2 == 0, BuildVersion: "v0." + string(rune('0'+i%10)),
			})
			wants = append(wants, want{ar, ast})
		}
	}
	view.LeaderID, view.ServedBy, view.AppliedIndex = view.Members[2].NodeID, "n-self", 1<<40
	h := newHarness(t)
	h.members.set(func(m *fakeMembership) { m.view = view })
	resp, err := h.client.Members(testCtx(t), &apiv1.MembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetLeaderId() != view.LeaderID || resp.GetServedBy() != "n-self" || resp.GetAppliedIndex() != 1<<40 {
		t.Errorf("view fields: %v", resp)
	}
	if len(resp.GetMembers()) != len(view.Members) {
		t.Fatalf("%d members, want %d", len(resp.GetMembers()), len(view.Members))
	}
	for i, got := range resp.GetMembers() {
		m, w := view.Members[i], wants[i]
		if got.GetNodeId() != m.NodeID || got.GetRegion() != m.Region || got.GetZone() != m.Zone ||
			got.GetApiAddr() != m.APIAddr || got.GetLeader() != m.Leader || got.GetHealthy() != m.Healthy ||
			got.GetBuildVersion() != m.BuildVersion || got.GetRole() != w.role || got.GetStatus() != w.status {
			t.Errorf("member %d: got %v, want %+v as %v/%v", i, got, m, w.role, w.status)
		}
	}
}

// A role or status the api cannot express is this server's bug: Internal,
// the value logged but not shown.
func TestMembersUnknownValueIsInternal(t *testing.T) {
	for name, mutate := range map[string]func(*Member){
		"role":   func(m *Member) { m.Role = "OBSERVER" },
		"status": func(m *Member) { m.Status = "ZOMBIE" },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.members.set(func(m *fakeMembership) { mutate(&m.view.Members[1]) })
			_, err := h.client.Members(testCtx(t), &apiv1.MembersRequest{})
			st, _ := status.FromError(err)
			if st.Code() != codes.Internal || strings.Contains(st.Message(), "OBSERVER") || strings.Contains(st.Message(), "ZOMBIE") {
				t.Fatalf("got %v, want a generic Internal", err)
			}
			if logs := h.logs.String(); !strings.Contains(logs, "OBSERVER") && !strings.Contains(logs, "ZOMBIE") {
				t.Error("the unknown value is not in the server log")
			}
		})
	}
}

func TestMembersWithoutMembership(t *testing.T) {
	h := newHarnessWith(t, WithMembership(nil))
	_, err := h.client.Members(testCtx(t), &apiv1.MembersRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unimplemented || ExceptionFromStatus(st) != "UnsupportedOperationException" ||
		!strings.Contains(st.Message(), "membership") {
		t.Fatalf("got %v, want Unimplemented naming the missing membership view", err)
	}
	// The rest of the API is unaffected.
	if _, err := h.client.Encrypt(testCtx(t), encryptReq()); err != nil {
		t.Errorf("Encrypt: %v", err)
	}
}

// Membership errors take the one error mapping, like keystore errors.
func TestMembersErrorMapped(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(f *fakeStore) { f.err = keystore.ErrUnavailable })
	_, err := h.client.Members(testCtx(t), &apiv1.MembersRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || ExceptionFromStatus(st) != "KMSUnavailableException" {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

// Any failure of the membership view, as the cluster returns it (no
// keystore sentinel), is Unavailable with the fixed text: ask another node.
func TestMembersClusterErrorUnavailable(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(f *fakeStore) {
		f.err = fmt.Errorf("get raft configuration (%s): cluster node is shut down", secretDetail)
	})
	_, err := h.client.Members(testCtx(t), &apiv1.MembersRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || ExceptionFromStatus(st) != "KMSUnavailableException" {
		t.Fatalf("got %v, want Unavailable", err)
	}
	if strings.Contains(st.Message(), secretDetail) || !strings.Contains(st.Message(), "retry, possibly on another node") {
		t.Fatalf("message %q, want the fixed text without detail", st.Message())
	}
}

func TestMembersCollector(t *testing.T) {
	fm := newFakeMembership(nil)
	fm.set(func(m *fakeMembership) {
		m.view.Members = append(m.view.Members,
			Member{NodeID: "n4", Region: "ap-south", Status: StatusLeft},
			Member{NodeID: "n5", Region: "ap-south", Status: "FLAPPING"},
			Member{NodeID: "n6", Region: "us-east", Status: StatusAlive})
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewMembersCollector(fm))
	want := `
# HELP meridian_members Cluster members this node sees, by region and gossip status.
# TYPE meridian_members gauge
meridian_members{region="ap-south",status="alive"} 0
meridian_members{region="ap-south",status="dead"} 0
meridian_members{region="ap-south",status="flapping"} 1
meridian_members{region="ap-south",status="left"} 1
meridian_members{region="ap-south",status="suspect"} 0
meridian_members{region="eu-west",status="alive"} 0
meridian_members{region="eu-west",status="dead"} 1
meridian_members{region="eu-west",status="left"} 0
meridian_members{region="eu-west",status="suspect"} 1
meridian_members{region="us-east",status="alive"} 2
meridian_members{region="us-east",status="dead"} 0
meridian_members{region="us-east",status="left"} 0
meridian_members{region="us-east",status="suspect"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
	// Read at scrape time: a node going dead shows on the next gather.
	fm.set(func(m *fakeMembership) { m.view.Members[0].Status = StatusDead })
	got := membersGauge(t, reg)
	if got["us-east/alive"] != 1 || got["us-east/dead"] != 1 || len(got) != 13 {
		t.Errorf("after n1 died: %v", got)
	}
	// A failing view leaves the series out; the scrape itself succeeds.
	fm.set(func(m *fakeMembership) { m.err = context.DeadlineExceeded })
	if n, err := testutil.GatherAndCount(reg, "meridian_members"); err != nil || n != 0 {
		t.Errorf("failing view: %d series, %v", n, err)
	}
}

// membersGauge gathers meridian_members as "region/status" -> value.
func membersGauge(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_members" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var region, st string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "region":
					region = l.GetValue()
				case "status":
					st = l.GetValue()
				}
			}
			out[region+"/"+st] = m.GetGauge().GetValue()
		}
	}
	return out
}
