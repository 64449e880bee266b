package chaos

import (
	"cmp"
	"slices"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// Why a call was refused by the key-state rules in a way the run itself
// made expected: the reasons key Report.Refusals and Status.Refusals.
// Every other failure counts against availability (docs/CHAOS.md has the
// table).
const (
	// ReasonDisabled: DisabledException from a data-plane call or a
	// RotateKeyOnDemand on a key the run disabled (DisableKey, or a
	// CancelKeyDeletion, which leaves the key DISABLED).
	ReasonDisabled = "DisabledException: key disabled by the run"
	// ReasonPending: KMSInvalidStateException from a data-plane call, a
	// rotate, enable, disable, schedule or alias change on a key (an
	// alias's target) the run scheduled for deletion.
	ReasonPending = "KMSInvalidStateException: key scheduled for deletion by the run"
	// ReasonNotPending: KMSInvalidStateException from a CancelKeyDeletion:
	// the workload cancels deletions on keys picked at random, and a key
	// is not pending deletion unless it was scheduled.
	ReasonNotPending = "KMSInvalidStateException: cancel of a key not pending deletion"
	// ReasonAliasTaken: AlreadyExistsException from a CreateAlias racing
	// another caller's CreateAlias of the same name.
	ReasonAliasTaken = "AlreadyExistsException: alias created by another call"
)

// refusalMark is a state the run may have put a key or alias in.
type refusalMark struct {
	state string // "disabled", "pending" or "alias"
	name  string // key id, or alias name
}

// marks are the states op may put things in, if it takes effect.
func marks(op *history.Op) []refusalMark {
	switch op.Kind {
	case history.DisableKey, history.CancelKeyDeletion:
		return []refusalMark{{"disabled", op.Key()}}
	case history.ScheduleKeyDeletion:
		return []refusalMark{{"pending", op.Key()}}
	case history.CreateAlias:
		return []refusalMark{{"alias", op.Input.Alias}}
	}
	return nil
}

// refusals decides which failed calls the key-state rules made expected.
// It is fed every call's invocation and completion in time order; a
// refusal is expected when a call that puts the key in the refused state
// was invoked before the refusal completed and had not failed by then.
// It is lenient on purpose: a replica may answer from a state that has
// since changed (data-plane calls are served by the local replica), and
// whether each answer was right for its moment is the checker's job, not
// the availability figure's. NotFoundException is never expected: the
// workload names only keys whose CreateKey was acknowledged, and nothing
// is deleted during a run (7-day deletion windows).
type refusals struct {
	inflight map[int][]refusalMark // marks of writes invoked and not completed, by op index
	live     map[refusalMark]int   // how many of those carry each mark
	made     map[refusalMark]bool  // marks of writes completed Ok or Unknown
}

func newRefusals() *refusals {
	return &refusals{inflight: map[int][]refusalMark{}, live: map[refusalMark]int{}, made: map[refusalMark]bool{}}
}

func (r *refusals) invoked(op *history.Op) {
	ms := marks(op)
	if len(ms) == 0 {
		return
	}
	r.inflight[op.Index] = ms
	for _, m := range ms {
		r.live[m]++
	}
}

// completed records op's completion and returns the reason it was an
// expected refusal ("" when it succeeded or failed otherwise).
func (r *refusals) completed(op *history.Op) string {
	if ms, ok := r.inflight[op.Index]; ok {
		delete(r.inflight, op.Index)
		for _, m := range ms {
			if r.live[m]--; r.live[m] == 0 {
				delete(r.live, m)
			}
			if op.Outcome != history.Failed {
				r.made[m] = true
			}
		}
	}
	return r.reason(op)
}

func (r *refusals) may(state, name string) bool {
	m := refusalMark{state, name}
	return r.made[m] || r.live[m] > 0
}

// reason is the table of docs/CHAOS.md, "Refused by the rules".
func (r *refusals) reason(op *history.Op) string {
	if op.Outcome != history.Failed {
		return ""
	}
	key := op.Key()
	switch client.Exception(op.Output.Error) {
	case client.Disabled:
		if (op.Kind.IsDataPlane() || op.Kind == history.RotateKeyOnDemand) && r.may("disabled", key) {
			return ReasonDisabled
		}
	case client.InvalidState:
		switch op.Kind {
		case history.CancelKeyDeletion:
			return ReasonNotPending
		case history.RotateKeyOnDemand, history.EnableKey, history.DisableKey, history.ScheduleKeyDeletion,
			history.CreateAlias, history.UpdateAlias:
			if r.may("pending", key) {
				return ReasonPending
			}
		default:
			if op.Kind.IsDataPlane() && r.may("pending", key) {
				return ReasonPending
			}
		}
	case client.AlreadyExists:
		if op.Kind == history.CreateAlias && r.may("alias", op.Input.Alias) {
			return ReasonAliasTaken
		}
	}
	return ""
}

// classifyRefusals replays h in time order (an invocation before a
// completion at the same instant) and returns each op's refusal reason,
// by op position.
func classifyRefusals(h *history.History) []string {
	type event struct {
		at       time.Duration
		complete bool
		i        int
	}
	evs := make([]event, 0, 2*len(h.Ops))
	for i := range h.Ops {
		evs = append(evs, event{h.Ops[i].Invoke, false, i}, event{h.Ops[i].Complete, true, i})
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.complete != b.complete {
			if a.complete {
				return 1
			}
			return -1
		}
		return 0
	})
	r := newRefusals()
	out := make([]string, len(h.Ops))
	for _, e := range evs {
		op := &h.Ops[e.i]
		if e.complete {
			out[e.i] = r.completed(op)
		} else {
			r.invoked(op)
		}
	}
	return out
}
