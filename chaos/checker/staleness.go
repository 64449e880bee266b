package checker

import (
	"fmt"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// span is an op's interval; an Unknown enable never ends (its effect may
// land at any later time).
type span struct {
	index            int
	invoke, complete time.Duration
}

// CheckStaleness finds data-plane successes on a key invoked more than
// opt.StalenessBound after a DisableKey or ScheduleKeyDeletion of it was
// acknowledged, when no EnableKey could have been ordered between the two.
// An EnableKey counts unless it definitely failed: acknowledged or Unknown,
// overlapping or after the disable, invoked before the use completed.
func CheckStaleness(h *history.History, opt Options) CheckVerdict {
	v := CheckVerdict{Name: "staleness", Result: Pass}
	offs := map[string][]span{}
	ons := map[string][]span{}
	forever := h.End + 1
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Key() == "" {
			continue
		}
		switch {
		case (op.Kind == history.DisableKey || op.Kind == history.ScheduleKeyDeletion) && op.Outcome == history.Ok:
			offs[op.Key()] = append(offs[op.Key()], span{op.Index, op.Invoke, op.Complete})
		case op.Kind == history.EnableKey && op.Outcome == history.Ok:
			ons[op.Key()] = append(ons[op.Key()], span{op.Index, op.Invoke, op.Complete})
		case op.Kind == history.EnableKey && op.Outcome == history.Unknown:
			ons[op.Key()] = append(ons[op.Key()], span{op.Index, op.Invoke, forever})
		}
	}
	for i := range h.Ops {
		d := &h.Ops[i]
		if !d.Kind.IsDataPlane() || d.Outcome != history.Ok {
			continue
		}
		v.Checked++
		key := d.Key()
		for _, x := range offs[key] {
			if d.Invoke <= x.complete+opt.StalenessBound || reenabled(ons[key], x, d) {
				continue
			}
			v.add(opt, Violation{Op: d.Index, Key: key, Node: d.Output.Node, Msg: fmt.Sprintf(
				"op #%d %s on key %s served by node %q, invoked at %v: op #%d %s acknowledged it at %v, beyond the bound %v",
				d.Index, d.Kind, key, d.Output.Node, d.Invoke, x.index, h.Ops[x.index].Kind, x.complete, opt.StalenessBound)})
			break
		}
	}
	if v.Violations > 0 {
		v.Result = Fail
	}
	return v
}

// reenabled reports whether some enable may be ordered after disable x and
// before use d finished.
func reenabled(ons []span, x span, d *history.Op) bool {
	for _, e := range ons {
		if e.complete > x.invoke && e.invoke < d.Complete {
			return true
		}
	}
	return false
}
