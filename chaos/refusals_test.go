package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// TestRefusalClassification feeds synthetic outcomes through the rules of
// docs/CHAOS.md: a refusal is expected only when a call of the run that
// had not failed could have put the key (or alias) in the refused state;
// every other failure stays a failure.
func TestRefusalClassification(t *testing.T) {
	ms := time.Millisecond
	const (
		dis = "DisabledException"
		is  = "KMSInvalidStateException"
		ae  = "AlreadyExistsException"
		nf  = "NotFoundException"
	)
	alias := func(o history.Op, name string) history.Op { o.Input.Alias = name; return o }
	ops := []history.Op{
		// Key d: disabled by the run at 100-110 ms.
		op(0, history.DisableKey, "d", 100*ms, 110*ms, history.Ok, ""),
		op(1, history.Encrypt, "d", 120*ms, 121*ms, history.Failed, dis),                // expected
		op(2, history.RotateKeyOnDemand, "d", 130*ms, 140*ms, history.Failed, dis),      // expected
		op(3, history.Encrypt, "never", 130*ms, 131*ms, history.Failed, dis),            // no disable of "never": failure
		op(4, history.Encrypt, "d", 150*ms, 151*ms, history.Failed, is),                 // d was never scheduled: failure
		op(5, history.DescribeKey, "d", 150*ms, 151*ms, history.Failed, dis),            // Describe is never refused as disabled
		op(6, history.Encrypt, "d", 160*ms, 161*ms, history.Failed, "Unavailable"),      // an outage, not a refusal
		op(7, history.Encrypt, "d", 170*ms, 171*ms, history.Failed, nf),                 // NotFound is never expected
		op(8, history.Decrypt, "d", 180*ms, 181*ms, history.Failed, "Internal"),         // nor Internal
		op(9, history.Encrypt, "d", 190*ms, 191*ms, history.Failed, "DeadlineExceeded"), // nor a timeout

		// Key p: a schedule in flight (invoked 200 ms, Unknown) explains
		// refusals completed before it was acknowledged.
		op(10, history.ScheduleKeyDeletion, "p", 200*ms, 900*ms, history.Unknown, "Unavailable"),
		op(11, history.EnableKey, "p", 210*ms, 220*ms, history.Failed, is),                     // expected
		op(12, history.Encrypt, "p", 230*ms, 231*ms, history.Failed, is),                       // expected
		alias(op(13, history.CreateAlias, "p", 240*ms, 250*ms, history.Failed, is), "alias/a"), // expected (target pending)
		op(14, history.Decrypt, "p", 240*ms, 241*ms, history.Failed, dis),                      // p was never disabled: failure

		// Key q: its schedule definitely failed, so it explains nothing
		// completed after that.
		op(15, history.ScheduleKeyDeletion, "q", 300*ms, 310*ms, history.Failed, "ValidationException"),
		op(16, history.DisableKey, "q", 320*ms, 330*ms, history.Failed, is), // failure
		// ... but a refusal that completed while it was still in flight is expected.
		op(17, history.ScheduleKeyDeletion, "r", 400*ms, 450*ms, history.Failed, "ValidationException"),
		op(18, history.DisableKey, "r", 410*ms, 420*ms, history.Failed, is), // expected

		// Cancel of a key not pending deletion: always by the rules.
		op(19, history.CancelKeyDeletion, "k", 500*ms, 510*ms, history.Failed, is),
		// A cancel leaves the key DISABLED.
		op(20, history.CancelKeyDeletion, "c", 520*ms, 530*ms, history.Ok, ""),
		op(21, history.GenerateDataKey, "c", 540*ms, 541*ms, history.Failed, dis), // expected

		// Two callers race on one alias name: the loser's AlreadyExists is
		// expected; an AlreadyExists with no other create is not.
		alias(op(22, history.CreateAlias, "k", 600*ms, 610*ms, history.Ok, ""), "alias/x"),
		alias(op(23, history.CreateAlias, "k", 605*ms, 615*ms, history.Failed, ae), "alias/x"), // expected
		alias(op(24, history.CreateAlias, "k", 620*ms, 630*ms, history.Failed, ae), "alias/y"), // failure
		// A refusal invoked before the disable but completed after its
		// invocation: expected (the disable may have applied first).
		op(25, history.Sign, "s", 700*ms, 720*ms, history.Failed, dis),
		op(26, history.DisableKey, "s", 710*ms, 730*ms, history.Ok, ""),
		// A refusal completed before any disable of the key was invoked: failure.
		op(27, history.Verify, "t", 740*ms, 750*ms, history.Failed, dis),
		op(28, history.DisableKey, "t", 760*ms, 770*ms, history.Ok, ""),
	}
	want := map[int]string{1: ReasonDisabled, 2: ReasonDisabled, 11: ReasonPending, 12: ReasonPending,
		13: ReasonPending, 18: ReasonPending, 19: ReasonNotPending, 21: ReasonDisabled, 23: ReasonAliasTaken,
		25: ReasonDisabled}
	got := classifyRefusals(&history.History{End: time.Second, Ops: ops})
	for i := range ops {
		if got[i] != want[i] {
			t.Errorf("op %d (%s %s on %s): reason %q, want %q", i, ops[i].Kind, ops[i].Output.Error, ops[i].KeyID, got[i], want[i])
		}
	}

	// The live view reaches the same verdicts when it sees the calls as
	// they happen.
	l := newLive(nil)
	type ev struct {
		at   time.Duration
		done bool
		i    int
	}
	var evs []ev
	for i := range ops {
		evs = append(evs, ev{ops[i].Invoke, false, i}, ev{ops[i].Complete, true, i})
	}
	for a := 1; a < len(evs); a++ { // insertion sort: invocations first at equal times
		for b := a; b > 0 && (evs[b].at < evs[b-1].at || evs[b].at == evs[b-1].at && !evs[b].done && evs[b-1].done); b-- {
			evs[b], evs[b-1] = evs[b-1], evs[b]
		}
	}
	for _, e := range evs {
		if e.done {
			l.observe(ops[e.i])
		} else {
			l.invoked(ops[e.i])
		}
	}
	s := l.snapshot()
	if s.RefusedTotal() != len(want) || s.Refusals[ReasonDisabled] != 4 || s.Refusals[ReasonPending] != 4 {
		t.Errorf("live refusals %v, want %d (4 disabled, 4 pending)", s.Refusals, len(want))
	}
	if s.Errors[dis] != 4 || s.Errors[is] != 2 || s.Errors[ae] != 1 || s.Errors[nf] != 1 {
		t.Errorf("live failures %v: want the refusals the run did not explain", s.Errors)
	}
}

// TestLiveAvailabilityLeavesOutRefusals: a hot key the run disabled is
// refused, and the live availability counts only the other calls.
func TestLiveAvailabilityLeavesOutRefusals(t *testing.T) {
	ms := time.Millisecond
	l := newLive([]string{"hot"})
	dis := op(0, history.DisableKey, "hot", 0, 10*ms, history.Ok, "")
	l.invoked(dis)
	l.observe(dis)
	for _, o := range []history.Op{
		op(1, history.Encrypt, "hot", 20*ms, 21*ms, history.Failed, "DisabledException"),
		op(2, history.Encrypt, "hot", 22*ms, 23*ms, history.Failed, "DisabledException"),
		op(3, history.Encrypt, "hot", 24*ms, 25*ms, history.Ok, ""),
		op(4, history.Decrypt, "hot", 26*ms, 27*ms, history.Ok, ""),
		op(5, history.Encrypt, "hot", 28*ms, 29*ms, history.Failed, "Unavailable"),
	} {
		l.invoked(o)
		l.observe(o)
	}
	s := l.snapshot()
	if s.Availability < 0.666 || s.Availability > 0.667 || s.RecentAvailability != s.Availability {
		t.Errorf("availability %.4f (recent %.4f), want 2 of 3 (the 2 refusals left out)", s.Availability, s.RecentAvailability)
	}
	if s.Refusals[ReasonDisabled] != 2 || len(s.Errors) != 1 || s.Errors["Unavailable"] != 1 {
		t.Errorf("refusals %v, errors %v", s.Refusals, s.Errors)
	}
	line := s.String()
	for _, w := range []string{"refused by the rules (expected) 2", "failed map[Unavailable:1]"} {
		if !strings.Contains(line, w) {
			t.Errorf("live line %q lacks %q", line, w)
		}
	}
}
