package checker

import (
	"fmt"

	"github.com/anishathalye/porcupine"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// Exception names the model reasons about; any other failure is dropped
// before checking because it says nothing about state.
const (
	exNotFound      = string(client.NotFound)
	exInvalidState  = string(client.InvalidState)
	exDisabled      = string(client.Disabled)
	exAlreadyExists = string(client.AlreadyExists)
)

// tri is a fact the history may not have pinned down yet (a key created
// before recording began, an alias nobody has touched).
type tri uint8

const (
	unsure tri = iota
	absent
	present
)

// keyState is one key's replicated control-plane state. A zero state or
// version means "not yet observed": the first observation pins it, which
// lets keys that existed before the history be checked without guessing.
type keyState struct {
	exists  tri
	state   string // history.State*, "" while unsure
	version int    // current version count, 0 while unsure
}

// aliasState is one alias: whether it exists and which key it names ("" if
// unknown).
type aliasState struct {
	exists tri
	target string
}

// opIn is a porcupine input: one history op in its partition.
type opIn struct {
	part    string // "key:<id>" or "alias:<name>"
	index   int    // history index, for reports
	kind    history.Kind
	unknown bool   // outcome Unknown: effect applied if legal, output unchecked
	target  string // alias ops: the key named
}

// opOut is what the op observed.
type opOut struct {
	err     string // "" for success, else an exception the model knows
	state   string
	version int
}

// newModel is the porcupine model: per-partition state, nondeterministic
// where the history cannot tell (an unobserved state, an Unknown alias
// change whose success depended on another partition).
func newModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partitionOps,
		Init:      func() []any { return []any{nil} },
		Step: func(s, in, out any) []any {
			i, o := in.(opIn), out.(opOut)
			if isAliasKind(i.kind) {
				as, _ := s.(aliasState)
				return stepAlias(as, i, o)
			}
			ks, _ := s.(keyState)
			return stepKey(ks, i, o)
		},
		DescribeOperation: func(in, out any) string {
			i, o := in.(opIn), out.(opOut)
			return describeOp(i, o)
		},
		DescribeState: func(s any) string {
			switch v := s.(type) {
			case keyState:
				return describeKey(v)
			case aliasState:
				return describeAlias(v)
			}
			return "unobserved"
		},
	}
	return nm.ToModel()
}

// partitionOps groups ops by the key or alias they touch: each group is
// checked alone, which keeps the search small (porcupine's cost grows
// with concurrency inside a partition, not with the number of partitions).
func partitionOps(ops []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range ops {
		p := op.Input.(opIn).part
		i, ok := idx[p]
		if !ok {
			i = len(parts)
			idx[p] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

func isAliasKind(k history.Kind) bool {
	return k == history.CreateAlias || k == history.UpdateAlias || k == history.DeleteAlias
}

// keyCandidates expands what is unsure about s into the concrete states it
// may be in; an unsure version stays 0 until observed.
func keyCandidates(s keyState) []keyState {
	states := []string{history.StateEnabled, history.StateDisabled, history.StatePendingDeletion}
	var out []keyState
	if s.exists == unsure {
		out = append(out, keyState{exists: absent})
	}
	if s.exists == absent {
		return []keyState{s}
	}
	if s.exists == present && s.state != "" {
		return []keyState{s}
	}
	for _, st := range states {
		out = append(out, keyState{exists: present, state: st, version: s.version})
	}
	return out
}

// keyEffect is what the service does to key state c for kind: the
// exception it answers ("" for success) and the state after.
func keyEffect(c keyState, kind history.Kind) (string, keyState) {
	if kind == history.CreateKey {
		if c.exists == present {
			return exAlreadyExists, c
		}
		return "", keyState{exists: present, state: history.StateEnabled, version: 1}
	}
	if c.exists == absent {
		return exNotFound, c
	}
	pending := c.state == history.StatePendingDeletion
	next := c
	switch kind {
	case history.DescribeKey:
	case history.EnableKey, history.DisableKey, history.ScheduleKeyDeletion:
		if pending {
			return exInvalidState, c
		}
		next.state = map[history.Kind]string{
			history.EnableKey:           history.StateEnabled,
			history.DisableKey:          history.StateDisabled,
			history.ScheduleKeyDeletion: history.StatePendingDeletion,
		}[kind]
	case history.CancelKeyDeletion:
		if !pending {
			return exInvalidState, c
		}
		next.state = history.StateDisabled
	case history.RotateKeyOnDemand:
		switch c.state {
		case history.StatePendingDeletion:
			return exInvalidState, c
		case history.StateDisabled:
			return exDisabled, c
		}
		if next.version > 0 {
			next.version++
		}
	}
	return "", next
}

func stepKey(s keyState, in opIn, out opOut) []any {
	var next []any
	for _, c := range keyCandidates(s) {
		errName, after := keyEffect(c, in.kind)
		if in.unknown {
			next = append(next, after)
			continue
		}
		if errName != out.err {
			continue
		}
		if errName != "" {
			next = append(next, c)
			continue
		}
		if ok, pinned := observe(c, after, in.kind, out); ok {
			next = append(next, pinned)
		}
	}
	return next
}

// observe checks a successful op's output against the model and pins
// what was unsure: before is the state the op saw, after the one it left.
func observe(before, after keyState, kind history.Kind, out opOut) (bool, keyState) {
	switch kind {
	case history.DescribeKey:
		if out.state != "" && out.state != before.state {
			return false, after
		}
		if out.version > 0 {
			if before.version != 0 && before.version != out.version {
				return false, after
			}
			after.version = out.version
		}
	case history.RotateKeyOnDemand:
		if out.version > 0 {
			if before.version != 0 && before.version+1 != out.version {
				return false, after
			}
			after.version = out.version
		}
	case history.ScheduleKeyDeletion:
		if out.state != "" && out.state != history.StatePendingDeletion {
			return false, after
		}
	}
	return true, after
}

func stepAlias(s aliasState, in opIn, out opOut) []any {
	cands := []aliasState{s}
	if s.exists == unsure {
		cands = []aliasState{{exists: absent}, {exists: present}}
	}
	var next []any
	for _, c := range cands {
		for _, r := range aliasResults(c, in) {
			if in.unknown || r.err == out.err {
				next = append(next, r.after)
			}
		}
	}
	return next
}

type aliasResult struct {
	err   string
	after aliasState
}

// aliasResults lists every answer an alias op may get in alias state c.
// Some depend on the target key's state, which lives in another partition,
// so the key-related failures are always allowed (the key partition does
// not see alias ops either): sound, at the price of not catching an alias
// created on a key pending deletion.
func aliasResults(c aliasState, in opIn) []aliasResult {
	set := aliasState{exists: present, target: in.target}
	switch in.kind {
	case history.CreateAlias:
		if c.exists == present {
			return []aliasResult{{exAlreadyExists, c}}
		}
		return []aliasResult{{"", set}, {exNotFound, c}, {exInvalidState, c}}
	case history.UpdateAlias:
		if c.exists == absent {
			return []aliasResult{{exNotFound, c}}
		}
		return []aliasResult{{"", set}, {exNotFound, c}, {exInvalidState, c}}
	case history.DeleteAlias:
		if c.exists == absent {
			return []aliasResult{{exNotFound, c}}
		}
		return []aliasResult{{"", aliasState{exists: absent}}}
	}
	return nil
}

func describeOp(i opIn, o opOut) string {
	s := fmt.Sprintf("#%d %s", i.index, i.kind)
	if i.target != "" {
		s += " -> " + i.target
	}
	switch {
	case i.unknown:
		return s + " ?"
	case o.err != "":
		return s + " ! " + o.err
	case o.state != "" || o.version > 0:
		return fmt.Sprintf("%s = %s v%d", s, o.state, o.version)
	}
	return s + " ok"
}

func describeKey(k keyState) string {
	switch k.exists {
	case unsure:
		return "unobserved"
	case absent:
		return "absent"
	}
	st := k.state
	if st == "" {
		st = "?"
	}
	if k.version == 0 {
		return st + " v?"
	}
	return fmt.Sprintf("%s v%d", st, k.version)
}

func describeAlias(a aliasState) string {
	switch a.exists {
	case unsure:
		return "unobserved"
	case absent:
		return "absent"
	}
	if a.target == "" {
		return "-> ?"
	}
	return "-> " + a.target
}
