package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/checker"
	"github.com/meridiankms/meridian/chaos/history"
)

func op(i int, kind history.Kind, key string, inv, done time.Duration, outcome history.Outcome, errName string) history.Op {
	return history.Op{Index: i, Kind: kind, KeyID: key, Invoke: inv, Complete: done, Outcome: outcome,
		Output: history.Output{Error: errName}}
}

// TestReportFigures computes the figures of a small hand-made history: a
// leader kill at 1 s, writes failing until a write acknowledged at 1.8 s,
// one hot-key data-plane call failed, and refusals by the key-state rules
// (a cancel of a key not pending deletion, a hot key the run disabled)
// counted apart from the failures.
func TestReportFigures(t *testing.T) {
	ms := time.Millisecond
	h := &history.History{Start: time.Now(), End: 3 * time.Second, Ops: []history.Op{
		op(0, history.CreateKey, "", 0, 10*ms, history.Ok, ""), // setup: before the run
		op(1, history.Encrypt, "hot", 200*ms, 201*ms, history.Ok, ""),
		op(2, history.EnableKey, "k", 900*ms, 950*ms, history.Ok, ""),
		op(3, history.DisableKey, "k", 1100*ms, 1600*ms, history.Unknown, "Unavailable"),
		op(4, history.Encrypt, "hot", 1200*ms, 1300*ms, history.Failed, "DeadlineExceeded"),
		op(5, history.EnableKey, "k", 1500*ms, 1800*ms, history.Ok, ""),
		op(6, history.CancelKeyDeletion, "k", 2000*ms, 2010*ms, history.Failed, "KMSInvalidStateException"),
		op(7, history.Decrypt, "hot", 2100*ms, 2101*ms, history.Ok, ""),
		op(8, history.Encrypt, "churn", 2200*ms, 2201*ms, history.Failed, "DisabledException"),
		op(9, history.DisableKey, "hot2", 2300*ms, 2310*ms, history.Ok, ""),
		op(10, history.Encrypt, "hot2", 2320*ms, 2321*ms, history.Failed, "DisabledException"),
		op(11, history.Encrypt, "hot2", 2330*ms, 2331*ms, history.Failed, "DisabledException"),
		op(12, history.ScheduleKeyDeletion, "k", 2400*ms, 2410*ms, history.Failed, "KMSInvalidStateException"),
	}}
	r := &Report{Faults: []FaultEvent{{Name: "kill-leader(node-1)", Injected: time.Second, Healed: 2 * time.Second}},
		Errors: map[string]int{}}
	v := &checker.Verdict{}
	for _, c := range v.Checks() {
		c.Result = checker.Pass
	}
	r.fill(h, 100*ms, []string{"hot", "hot2"}, v)

	if r.TotalOps != 12 {
		t.Errorf("total ops %d, want 12 (setup excluded)", r.TotalOps)
	}
	if dp := r.DataPlane; dp.Calls != 5 || dp.OK != 2 || dp.Refused != 2 || dp.Failed != 1 || dp.Outages != 1 {
		t.Errorf("data plane %+v, want 5 calls on hot keys: 2 ok, 2 refused (hot2 disabled), 1 failed, an outage", dp)
	}
	if r.Control.Calls != 6 || r.Control.OK != 3 || r.Control.Refused != 1 || r.Control.Failed != 2 || r.Control.Outages != 1 {
		t.Errorf("control plane %+v, want 6 writes: 3 ok, 1 refused (cancel), 2 failed (one an outage)", r.Control)
	}
	// Availability is over the calls not refused by the rules.
	if a := r.DataPlane.Availability; a < 0.6666 || a > 0.6667 {
		t.Errorf("data-plane availability %.4f, want 2 of 3", a)
	}
	if a := r.Control.Availability; a != 0.6 {
		t.Errorf("control-plane availability %.4f, want 3 of 5", a)
	}
	if r.Refusals[ReasonNotPending] != 1 || r.Refusals[ReasonDisabled] != 2 || len(r.Refusals) != 2 {
		t.Errorf("refusals %v, want the cancel and the two calls on the disabled hot key", r.Refusals)
	}
	if len(r.ControlOutages) != 1 || r.ControlOutages[0].StartMS != 1100 || r.ControlOutages[0].EndMS != 1800 {
		t.Errorf("outages %+v, want one window 1100..1800 ms", r.ControlOutages)
	}
	if len(r.Failover) != 1 || r.Failover[0].FirstWriteMS != 800 {
		t.Errorf("failover %+v, want 800 ms (first acked write invoked after the kill)", r.Failover)
	}
	// The encrypt on the churned key was refused as disabled, but no call
	// disabled it: a failure. The schedule of k was refused as pending,
	// but nothing scheduled k: a failure.
	if r.Errors["DisabledException"] != 1 || r.Errors["Unavailable"] != 1 || r.Errors["KMSInvalidStateException"] != 1 ||
		r.Errors["DeadlineExceeded"] != 1 || len(r.Errors) != 4 {
		t.Errorf("errors %v, want the failures only", r.Errors)
	}
	if !r.Passed {
		t.Errorf("report not passed: %v", r.Notes)
	}
	md := r.Markdown()
	for _, want := range []string{"PASSED", "1100..+1800", "kill-leader(node-1)",
		"| data-plane availability (hot keys) | 66.667% (2 of 3 ok, 1 failed (1 outages); 2 more refused by the rules, expected) |",
		"| control-plane write availability | 60.000% (3 of 5 ok, 2 failed (1 outages); 1 more refused by the rules, expected) |",
		"## Refused by the rules (expected)", "| " + ReasonNotPending + " | 1 |", "| " + ReasonDisabled + " | 2 |",
		"## Failures by kind", "| KMSInvalidStateException | 1 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	var js struct {
		DP       map[string]any `json:"data_plane"`
		CP       map[string]any `json:"control_plane"`
		Refusals map[string]int `json:"refusals_by_rule"`
		Errors   map[string]int `json:"errors"`
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if js.DP["refused_by_rules"] != 2.0 || js.DP["failed"] != 1.0 || js.CP["refused_by_rules"] != 1.0 ||
		js.CP["availability"] != 0.6 || js.Refusals[ReasonDisabled] != 2 || js.Errors["DisabledException"] != 1 {
		t.Errorf("report.json: data plane %v, control plane %v, refusals %v, errors %v", js.DP, js.CP, js.Refusals, js.Errors)
	}
}

// TestReportNotFoundAfterCreate: a NotFound on a key whose create had been
// acknowledged is a failure, counted and explained.
func TestReportNotFoundAfterCreate(t *testing.T) {
	ms := time.Millisecond
	h := &history.History{Start: time.Now(), End: time.Second, Ops: []history.Op{
		op(0, history.CreateKey, "", 100*ms, 110*ms, history.Ok, ""),
		op(1, history.DescribeKey, "k-new", 120*ms, 125*ms, history.Failed, "NotFoundException"),
		op(2, history.DescribeKey, "k-other", 130*ms, 135*ms, history.Failed, "NotFoundException"),
	}}
	h.Ops[0].Output.KeyID = "k-new"
	r := &Report{}
	r.fill(h, 0, nil, &checker.Verdict{})
	if r.NotFoundAfterCreate != 1 || r.Errors["NotFoundException"] != 2 || len(r.Refusals) != 0 {
		t.Fatalf("not found after create %d, errors %v, refusals %v", r.NotFoundAfterCreate, r.Errors, r.Refusals)
	}
	if md := r.Markdown(); !strings.Contains(md, "1 NotFoundException failure(s) named a key whose CreateKey had been acknowledged") {
		t.Errorf("markdown does not explain the NotFound:\n%s", md)
	}
}

// stub is a Harness for the runner's refusals, which happen before any
// node is touched.
type stub struct {
	Remote
	caps    Capability
	enabled bool
}

func (s *stub) Name() string                               { return "stub" }
func (s *stub) Capabilities() Capability                   { return s.caps }
func (s *stub) ChaosEnabled(context.Context) (bool, error) { return s.enabled, nil }
func (s *stub) Nodes(context.Context) ([]NodeInfo, error)  { return topo(s.caps).Nodes, nil }
func (s *stub) Leader(context.Context) (string, error)     { return "node-1", nil }

func TestRunRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		opt  Options
		want error
	}{
		{"no harness", Options{Scenario: "kill-leader", Duration: time.Minute}, ErrBadOptions},
		{"unknown scenario", Options{Scenario: "nope", Duration: time.Minute, Harness: &stub{caps: CapAll, enabled: true}}, ErrBadOptions},
		{"too short", Options{Scenario: "kill-leader", Duration: time.Millisecond, Harness: &stub{caps: CapAll, enabled: true}}, ErrBadOptions},
		{"not chaos enabled", Options{Scenario: "kill-leader", Duration: time.Minute, Harness: &stub{caps: CapAll}}, ErrNotChaosEnabled},
		{"cannot kill", Options{Scenario: "kill-leader", Duration: time.Minute, Harness: &stub{caps: CapPartition, enabled: true}}, ErrUnsupported},
		{"forced, still cannot freeze", Options{Scenario: "freeze-leader", Duration: time.Minute, Force: true, Harness: &stub{caps: CapKill}}, ErrUnsupported},
	}
	for _, tc := range cases {
		_, err := Run(ctx, tc.opt)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		// The refusal tells the operator both ways out.
		if tc.want == ErrNotChaosEnabled {
			for _, w := range []string{"meridian server --chaos", "--force"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not name %s", tc.name, err, w)
				}
			}
		}
	}
}

// TestFailoverEarliestCompletion: a write stuck on the dead leader does not
// hide a later write that succeeded elsewhere.
func TestFailoverEarliestCompletion(t *testing.T) {
	ms := time.Millisecond
	stuck := op(0, history.EnableKey, "k", 1100*ms, 6000*ms, history.Ok, "")
	quick := op(1, history.DisableKey, "k", 1200*ms, 1400*ms, history.Ok, "")
	got := failovers([]FaultEvent{{Name: "freeze-leader", Injected: time.Second}}, []*history.Op{&stuck, &quick}, 0)
	if len(got) != 1 || got[0].FirstWriteMS != 400 || got[0].Probed {
		t.Fatalf("failover %+v, want 400 ms by the workload", got)
	}
}

// TestFailoverProbed: a first write invoked after the workload ended is
// the runner's probe, and the report says so; one invoked before is not.
func TestFailoverProbed(t *testing.T) {
	ms := time.Millisecond
	events := []FaultEvent{{Name: "kill-leader", Injected: 2900 * ms}}
	probe := op(9, history.CreateKey, "", 3200*ms, 3500*ms, history.Ok, "")
	got := failovers(events, []*history.Op{&probe}, 3000*ms)
	if len(got) != 1 || got[0].FirstWriteMS != 600 || !got[0].Probed {
		t.Fatalf("failover %+v, want 600 ms by the probe", got)
	}
	late := op(1, history.DisableKey, "k", 2950*ms, 3400*ms, history.Ok, "")
	got = failovers(events, []*history.Op{&probe, &late}, 3000*ms)
	if len(got) != 1 || got[0].FirstWriteMS != 500 || got[0].Probed {
		t.Fatalf("failover %+v, want 500 ms by the workload", got)
	}
}

// TestWriteMissingAfter: the runner probes only when some fault has no
// acknowledged write invoked after it.
func TestWriteMissingAfter(t *testing.T) {
	ms := time.Millisecond
	okWrite := op(0, history.DisableKey, "k", 1500*ms, 1600*ms, history.Ok, "")
	failed := op(1, history.EnableKey, "k", 2500*ms, 2600*ms, history.Unknown, "DeadlineExceeded")
	read := op(2, history.DescribeKey, "k", 2500*ms, 2600*ms, history.Ok, "")
	h := &history.History{Ops: []history.Op{okWrite, failed, read}}
	for _, tc := range []struct {
		events []FaultEvent
		want   bool
	}{
		{nil, false},
		{[]FaultEvent{{Name: "a", Injected: time.Second}}, false},
		{[]FaultEvent{{Name: "a", Injected: time.Second}, {Name: "b", Injected: 2 * time.Second}}, true},
		{[]FaultEvent{{Name: "b", Injected: 1500 * ms}}, false}, // invoked at the injection counts
	} {
		if got := writeMissingAfter(h, tc.events); got != tc.want {
			t.Errorf("events %+v: writeMissingAfter %v, want %v", tc.events, got, tc.want)
		}
	}
}
