package checker

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/meridiankms/meridian/chaos/history"
)

// modelled lists the kinds the linearizability model knows.
var modelled = map[history.Kind]bool{
	history.CreateKey: true, history.DescribeKey: true, history.EnableKey: true,
	history.DisableKey: true, history.ScheduleKeyDeletion: true, history.CancelKeyDeletion: true,
	history.RotateKeyOnDemand: true, history.CreateAlias: true, history.UpdateAlias: true,
	history.DeleteAlias: true,
}

// informative lists the exceptions that are observations of state; ops
// failing with anything else are dropped (they had no effect and saw
// nothing).
var informative = map[string]bool{
	exNotFound: true, exInvalidState: true, exDisabled: true, exAlreadyExists: true,
}

// toOperations turns the control-plane part of h into porcupine operations.
//
// Unknown outcomes return after every other op (h.End+1): the op may then be
// linearized anywhere after its invocation, including after everything (not
// having happened), as Jepsen does. Reads, and writes that failed with an
// observation, are answered by the serving node's replica (DescribeKey is
// data plane; write pre-checks resolve the key locally), so they may see
// any state from up to bound before their invocation: their call time moves
// back by bound.
func toOperations(h *history.History, opt Options) []porcupine.Operation {
	var ops []porcupine.Operation
	for i := range h.Ops {
		op := &h.Ops[i]
		in, out, ok := translate(op, opt)
		if !ok {
			continue
		}
		call, ret := int64(op.Invoke), int64(op.Complete)
		if in.unknown {
			ret = int64(h.End) + 1
		} else if op.Kind == history.DescribeKey || out.err != "" {
			call -= int64(opt.StalenessBound)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.Client, Input: in, Output: out, Call: call, Return: ret,
		})
	}
	return ops
}

// translate maps one history op to the model, or reports it irrelevant.
func translate(op *history.Op, opt Options) (opIn, opOut, bool) {
	if !modelled[op.Kind] {
		return opIn{}, opOut{}, false
	}
	in := opIn{index: op.Index, kind: op.Kind, unknown: op.Outcome == history.Unknown}
	out := opOut{state: op.Output.State, version: op.Output.KeyVersion}
	switch op.Outcome {
	case history.Failed:
		if !informative[op.Output.Error] {
			return in, out, false
		}
		out.err = op.Output.Error
	case history.Unknown:
		out = opOut{}
	}
	if isAliasKind(op.Kind) {
		if op.Input.Alias == "" {
			return in, out, false
		}
		in.part, in.target = "alias:"+op.Input.Alias, op.KeyID
		return in, out, true
	}
	if op.Kind == history.DescribeKey && opt.SkipDescribe {
		return in, out, false
	}
	key := op.KeyID
	if op.Kind == history.CreateKey {
		key = op.Output.KeyID // unknown creates have no id and are dropped
	}
	// An op addressed through an alias reads the alias too: it belongs to
	// no single partition, so it is left out.
	if key == "" || strings.HasPrefix(key, aliasPrefix) {
		return in, out, false
	}
	in.part = "key:" + key
	return in, out, true
}

const aliasPrefix = "alias/"

// linResult is the linearizability check with what the report and the
// artefacts need.
type linResult struct {
	verdict CheckVerdict
	model   porcupine.Model
	illegal map[string][]porcupine.Operation // failing partitions
}

// checkLinearizable checks every partition, several at a time, within
// opt.LinearizabilityTimeout overall.
func checkLinearizable(h *history.History, opt Options) linResult {
	start := time.Now()
	model := newModel()
	ops := toOperations(h, opt)
	parts := partitionOps(ops)
	res := linResult{model: model, illegal: map[string][]porcupine.Operation{}}
	v := CheckVerdict{Name: "linearizability", Checked: len(ops)}

	deadline := start.Add(opt.LinearizabilityTimeout)
	results := make([]porcupine.CheckResult, len(parts))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				left := time.Until(deadline)
				if left <= 0 {
					results[i] = porcupine.Unknown
					continue
				}
				results[i] = porcupine.CheckOperationsTimeout(single(model), parts[i], left)
			}
		}()
	}
	for i := range parts {
		work <- i
	}
	close(work)
	wg.Wait()

	var unknownParts []string
	for i, r := range results {
		name := parts[i][0].Input.(opIn).part
		switch r {
		case porcupine.Illegal:
			res.illegal[name] = parts[i]
		case porcupine.Unknown:
			unknownParts = append(unknownParts, name)
		}
	}
	names := make([]string, 0, len(res.illegal))
	for n := range res.illegal {
		names = append(names, n)
	}
	sort.Strings(names)
	sort.Strings(unknownParts)
	for _, n := range names {
		v.add(opt, Violation{Key: n, Msg: fmt.Sprintf("%s: no linearization of its %d ops exists", n, len(res.illegal[n]))})
	}
	switch {
	case len(names) > 0:
		v.Result = Fail
	case len(unknownParts) > 0:
		v.Result = Inconclusive
		v.Notes = append(v.Notes, fmt.Sprintf("timed out after %v on %d partitions (e.g. %s)",
			opt.LinearizabilityTimeout, len(unknownParts), unknownParts[0]))
	default:
		v.Result = Pass
	}
	v.Notes = append(v.Notes, fmt.Sprintf("%d partitions, %d unknown-outcome ops, %v",
		len(parts), countUnknown(ops), time.Since(start).Round(time.Millisecond)))
	res.verdict = v
	return res
}

// single is model without its partition function: the caller partitioned.
func single(m porcupine.Model) porcupine.Model {
	m.Partition = nil
	return m
}

func countUnknown(ops []porcupine.Operation) int {
	n := 0
	for _, op := range ops {
		if op.Input.(opIn).unknown {
			n++
		}
	}
	return n
}

// visualize writes porcupine's HTML for each failing partition (at most
// limit of them) into dir and returns the paths.
func (r *linResult) visualize(dir string, limit int, timeout time.Duration) ([]string, error) {
	names := make([]string, 0, len(r.illegal))
	for n := range r.illegal {
		names = append(names, n)
	}
	sort.Strings(names)
	var paths []string
	for i, n := range names {
		if i == limit {
			break
		}
		_, info := porcupine.CheckOperationsVerbose(single(r.model), r.illegal[n], timeout)
		path := filepath.Join(dir, "linearizability-"+fileSafe(n)+".html")
		f, err := os.Create(path)
		if err != nil {
			return paths, fmt.Errorf("visualize %s: %w", n, err)
		}
		err = porcupine.Visualize(single(r.model), info, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return paths, fmt.Errorf("visualize %s: %w", n, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// fileSafe keeps a partition name usable as part of a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
