package transport

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// histogramCount reads the number of observations of one operation.
func histogramCount(t *testing.T, reg prometheus.Gatherer, op string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestRequestMetrics(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	// Every KeyManagement method's success series exists before any call.
	if got := testutil.ToFloat64(h.metrics.requests.WithLabelValues("Sign", "ok")); got != 0 {
		t.Errorf("Sign ok starts at %v", got)
	}
	for range 2 {
		if _, err := h.client.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	h.store.set(func(f *fakeStore) { f.err = keystore.ErrNotFound })
	if _, err := h.client.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: "k-404"}); err == nil {
		t.Fatal("DescribeKey succeeded")
	}
	if _, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, outcome string
		want        float64
	}{
		{"Encrypt", "ok", 2},
		{"DescribeKey", "NotFoundException", 1},
		{"DescribeKey", "ok", 0},
		{"grpc.health.v1.Health/Check", "ok", 1},
	} {
		if got := testutil.ToFloat64(h.metrics.requests.WithLabelValues(tc.op, tc.outcome)); got != tc.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tc.op, tc.outcome, got, tc.want)
		}
	}
	for op, want := range map[string]uint64{"Encrypt": 2, "DescribeKey": 1, "Decrypt": 0} {
		if got := histogramCount(t, h.reg, op); got != want {
			t.Errorf("duration{%s} count = %d, want %d", op, got, want)
		}
	}
	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

func TestDurationBuckets(t *testing.T) {
	first, last := durationBuckets[0], durationBuckets[len(durationBuckets)-1]
	if math.Abs(first-50e-6) > 1e-9 || math.Abs(last-5) > 1e-9 {
		t.Errorf("buckets run %v..%v, want 50us..5s", first, last)
	}
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	var already prometheus.AlreadyRegisteredError
	if _, err := NewMetrics(reg); !errors.As(err, &already) {
		t.Errorf("second NewMetrics on one registry: %v", err)
	}
	if _, err := NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) succeeded")
	}
	// A failed registration leaves nothing behind: this registry held only
	// the duration histogram, so the counter must not stay registered.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meridian_request_duration_seconds"}, []string{"x"}))
	if _, err := NewMetrics(reg2); err == nil {
		t.Fatal("NewMetrics over a clashing registry succeeded")
	}
	if n, err := testutil.GatherAndCount(reg2, "meridian_requests_total"); err != nil || n != 0 {
		t.Errorf("counter left registered after failure: %d %v", n, err)
	}
}

func TestRaftCollector(t *testing.T) {
	status := RaftStatus{State: "Follower", Term: 4, CommitIndex: 120, AppliedIndex: 118, LastContact: 250 * time.Millisecond,
		ApplyLag: 2, LeaderChanges: 3}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewRaftCollector(RaftStatsFunc(func() RaftStatus { return status })))
	want := `
# HELP meridian_apply_lag_entries Committed Raft entries this node's FSM has not applied yet.
# TYPE meridian_apply_lag_entries gauge
meridian_apply_lag_entries 2
# HELP meridian_leader_changes_total Leader changes this node has observed since it started.
# TYPE meridian_leader_changes_total counter
meridian_leader_changes_total 3
# HELP meridian_raft_applied_index Highest Raft log index applied to this node's FSM.
# TYPE meridian_raft_applied_index gauge
meridian_raft_applied_index 118
# HELP meridian_raft_commit_index Highest Raft log index known committed.
# TYPE meridian_raft_commit_index gauge
meridian_raft_commit_index 120
# HELP meridian_raft_last_contact_seconds Seconds since this node last heard from the leader (0 on the leader).
# TYPE meridian_raft_last_contact_seconds gauge
meridian_raft_last_contact_seconds 0.25
# HELP meridian_raft_state 1 for this node's current Raft state, 0 for the others.
# TYPE meridian_raft_state gauge
meridian_raft_state{state="candidate"} 0
meridian_raft_state{state="follower"} 1
meridian_raft_state{state="leader"} 0
meridian_raft_state{state="shutdown"} 0
# HELP meridian_raft_term Current Raft term.
# TYPE meridian_raft_term gauge
meridian_raft_term 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// Read at scrape time: a change shows on the next gather; a node that
	// never heard from a leader has no last-contact series.
	status = RaftStatus{State: "Leader", Term: 5, LastContact: -1, LeaderChanges: 4}
	if n, _ := testutil.GatherAndCount(reg, "meridian_raft_last_contact_seconds"); n != 0 {
		t.Errorf("last contact present when never contacted")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP meridian_raft_term Current Raft term.
# TYPE meridian_raft_term gauge
meridian_raft_term 5
# HELP meridian_leader_changes_total Leader changes this node has observed since it started.
# TYPE meridian_leader_changes_total counter
meridian_leader_changes_total 4
`), "meridian_raft_term", "meridian_leader_changes_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

func TestNodeInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterNodeInfo(reg, "node-a", "eu-west"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP meridian_node_info Constant 1, labelled with this node's id and region.
# TYPE meridian_node_info gauge
meridian_node_info{node_id="node-a",region="eu-west"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := RegisterNodeInfo(reg, "node-a", "eu-west"); err == nil {
		t.Error("registering node info twice succeeded")
	}
}
