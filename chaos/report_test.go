package chaos

import (
	"context"
	"errors"
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
// one hot-key data-plane call failed.
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
	}}
	r := &Report{Faults: []FaultEvent{{Name: "kill-leader(node-1)", Injected: time.Second, Healed: 2 * time.Second}},
		Errors: map[string]int{}}
	v := &checker.Verdict{}
	for _, c := range v.Checks() {
		c.Result = checker.Pass
	}
	r.fill(h, 100*ms, []string{"hot"}, v)

	if r.TotalOps != 8 {
		t.Errorf("total ops %d, want 8 (setup excluded)", r.TotalOps)
	}
	if r.DataPlane.Calls != 3 || r.DataPlane.OK != 2 || r.DataPlane.Outages != 1 {
		t.Errorf("data plane %+v, want 3 calls on hot keys, 2 ok, 1 outage", r.DataPlane)
	}
	if r.Control.Calls != 4 || r.Control.Outages != 1 || r.Control.Failed != 2 {
		t.Errorf("control plane %+v, want 4 writes, 2 failed, 1 outage", r.Control)
	}
	if len(r.ControlOutages) != 1 || r.ControlOutages[0].StartMS != 1100 || r.ControlOutages[0].EndMS != 1800 {
		t.Errorf("outages %+v, want one window 1100..1800 ms", r.ControlOutages)
	}
	if len(r.Failover) != 1 || r.Failover[0].FirstWriteMS != 800 {
		t.Errorf("failover %+v, want 800 ms (first acked write invoked after the kill)", r.Failover)
	}
	if r.Errors["DisabledException"] != 1 || r.Errors["Unavailable"] != 1 {
		t.Errorf("errors %v", r.Errors)
	}
	if !r.Passed {
		t.Errorf("report not passed: %v", r.Notes)
	}
	md := r.Markdown()
	for _, want := range []string{"PASSED", "66.667%", "1100..+1800", "kill-leader(node-1)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
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
	}
}

// TestFailoverEarliestCompletion: a write stuck on the dead leader does not
// hide a later write that succeeded elsewhere.
func TestFailoverEarliestCompletion(t *testing.T) {
	ms := time.Millisecond
	stuck := op(0, history.EnableKey, "k", 1100*ms, 6000*ms, history.Ok, "")
	quick := op(1, history.DisableKey, "k", 1200*ms, 1400*ms, history.Ok, "")
	got := failovers([]FaultEvent{{Name: "freeze-leader", Injected: time.Second}}, []*history.Op{&stuck, &quick})
	if len(got) != 1 || got[0].FirstWriteMS != 400 {
		t.Fatalf("failover %+v, want 400 ms", got)
	}
}
