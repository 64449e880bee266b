package checker

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// The generator runs a reference implementation of the key lifecycle
// (written from fsm's rules, apart from the checker's model) behind random
// concurrent clients: each op takes effect at a random instant inside its
// interval, so every history it makes is linearizable by construction.

type genConfig struct {
	clients, ops, keys, aliases int
	unknown                     float64 // share of writes with an Unknown outcome
	seed                        uint64
}

type shell struct {
	op       history.Op
	lin      time.Duration
	applied  bool // Unknown ops: did it take effect?
	target   string
	explicit bool
}

type refKey struct {
	state   string
	version int
}

type refSys struct {
	keys    map[string]*refKey
	aliases map[string]string
	ct      int
}

var genKinds = []struct {
	kind   history.Kind
	weight int
}{
	{history.DescribeKey, 25}, {history.Encrypt, 20}, {history.EnableKey, 10}, {history.DisableKey, 10},
	{history.RotateKeyOnDemand, 8}, {history.ScheduleKeyDeletion, 3}, {history.CancelKeyDeletion, 4},
	{history.CreateAlias, 3}, {history.UpdateAlias, 3}, {history.DeleteAlias, 3},
}

func pickKind(rng *rand.Rand) history.Kind {
	total := 0
	for _, k := range genKinds {
		total += k.weight
	}
	n := rng.IntN(total)
	for _, k := range genKinds {
		if n < k.weight {
			return k.kind
		}
		n -= k.weight
	}
	panic("unreachable")
}

// generate makes a valid history; its ops are in invocation order.
func generate(cfg genConfig) *history.History {
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	var shells []*shell
	cursor := make([]time.Duration, cfg.clients)
	creates := rng.Perm(cfg.ops)[:cfg.keys] // which op slots create the keys
	isCreate := map[int]int{}
	for k, slot := range creates {
		isCreate[slot] = k
	}
	for i := range cfg.ops {
		c := rng.IntN(cfg.clients)
		inv := cursor[c] + time.Duration(rng.IntN(2000))*time.Microsecond
		cmp := inv + time.Duration(1+rng.IntN(10000))*time.Microsecond
		cursor[c] = cmp
		s := &shell{op: history.Op{Client: c, Invoke: inv, Complete: cmp}}
		if k, ok := isCreate[i]; ok {
			s.op.Kind = history.CreateKey
			s.target = keyName(k)
		} else {
			s.op.Kind = pickKind(rng)
			s.op.KeyID = keyName(rng.IntN(cfg.keys))
			if isAliasKind(s.op.Kind) {
				s.op.Input.Alias = fmt.Sprintf("alias/a%d", rng.IntN(cfg.aliases))
				if s.op.Kind == history.DeleteAlias {
					s.op.KeyID = ""
				}
			}
		}
		s.lin = inv + time.Duration(rng.Int64N(int64(cmp-inv)+1))
		// An Unknown CreateKey names no key, so no client could address
		// the key afterwards: the generator keeps creates acknowledged.
		if s.op.Kind.IsWrite() && s.op.Kind != history.CreateKey && rng.Float64() < cfg.unknown {
			s.op.Outcome = history.Unknown
			s.applied = rng.IntN(2) == 0
			// An unknown write may land after its client gave up.
			s.lin += time.Duration(rng.IntN(20000)) * time.Microsecond
		}
		shells = append(shells, s)
	}
	sort.SliceStable(shells, func(i, j int) bool { return shells[i].lin < shells[j].lin })
	ref := &refSys{keys: map[string]*refKey{}, aliases: map[string]string{}}
	for _, s := range shells {
		if s.op.Outcome == history.Unknown {
			if s.applied {
				ref.apply(s)
			}
			s.op.Output = history.Output{Error: "Unavailable"}
			continue
		}
		out := ref.apply(s)
		s.op.Output, s.op.Outcome = out, history.Ok
		if out.Error != "" {
			s.op.Outcome = history.Failed
		}
	}
	sort.SliceStable(shells, func(i, j int) bool { return shells[i].op.Invoke < shells[j].op.Invoke })
	h := &history.History{}
	for i, s := range shells {
		s.op.Index = i
		h.Ops = append(h.Ops, s.op)
		h.End = max(h.End, s.op.Complete, s.lin)
	}
	h.End += time.Millisecond
	return h
}

// apply is the service's behaviour, following fsm/apply_key.go and
// fsm/apply_alias.go.
func (r *refSys) apply(s *shell) history.Output {
	op := &s.op
	if op.Kind == history.CreateKey {
		r.keys[s.target] = &refKey{state: history.StateEnabled, version: 1}
		return history.Output{KeyID: s.target}
	}
	k := r.keys[op.KeyID]
	switch op.Kind {
	case history.CreateAlias:
		if _, taken := r.aliases[op.Input.Alias]; taken {
			return failed(exAlreadyExists)
		}
	case history.UpdateAlias, history.DeleteAlias:
		if _, ok := r.aliases[op.Input.Alias]; !ok {
			return failed(exNotFound)
		}
		if op.Kind == history.DeleteAlias {
			delete(r.aliases, op.Input.Alias)
			return history.Output{}
		}
	}
	if k == nil {
		return failed(exNotFound)
	}
	pending := k.state == history.StatePendingDeletion
	switch op.Kind {
	case history.DescribeKey:
		return history.Output{State: k.state, KeyVersion: k.version}
	case history.CreateAlias, history.UpdateAlias:
		if pending {
			return failed(exInvalidState)
		}
		r.aliases[op.Input.Alias] = op.KeyID
	case history.EnableKey, history.DisableKey:
		if pending {
			return failed(exInvalidState)
		}
		k.state = history.StateEnabled
		if op.Kind == history.DisableKey {
			k.state = history.StateDisabled
		}
	case history.ScheduleKeyDeletion:
		if pending {
			return failed(exInvalidState)
		}
		k.state = history.StatePendingDeletion
		return history.Output{State: k.state}
	case history.CancelKeyDeletion:
		if !pending {
			return failed(exInvalidState)
		}
		k.state = history.StateDisabled
	case history.RotateKeyOnDemand, history.Encrypt:
		switch k.state {
		case history.StatePendingDeletion:
			return failed(exInvalidState)
		case history.StateDisabled:
			return failed(exDisabled)
		}
		if op.Kind == history.Encrypt {
			r.ct++
			return history.Output{KeyID: op.KeyID, KeyVersion: k.version, Ciphertext: fmt.Appendf(nil, "ct-%d", r.ct)}
		}
		k.version++
		return history.Output{KeyID: op.KeyID, KeyVersion: k.version}
	}
	return history.Output{}
}
