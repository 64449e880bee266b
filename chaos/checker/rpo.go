package checker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// KeyInfo is what one node says about a key.
type KeyInfo struct {
	State   string // history.State*
	Version int    // current key version
}

// Cluster is the healed cluster as the RPO checks see it: every call goes to
// the named node alone (no failover), so each replica answers for itself.
// Harnesses implement it with a single-node client per node.
type Cluster interface {
	// Nodes lists the node ids to check.
	Nodes() []string
	// Describe asks node for key keyID; a missing key is an error
	// matching client.NotFound.
	Describe(ctx context.Context, node, keyID string) (KeyInfo, error)
	// Decrypt asks node to decrypt ciphertext under encryption context ec.
	Decrypt(ctx context.Context, node string, ciphertext []byte, ec map[string]string) ([]byte, error)
}

// ackedKeys lists the keys of acknowledged CreateKeys, sorted.
func ackedKeys(h *history.History) []string {
	seen := map[string]bool{}
	var keys []string
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == history.CreateKey && op.Outcome == history.Ok && op.Output.KeyID != "" && !seen[op.Output.KeyID] {
			seen[op.Output.KeyID] = true
			keys = append(keys, op.Output.KeyID)
		}
	}
	sort.Strings(keys)
	return keys
}

// CheckLostWrites asks every node for every acknowledged CreateKey's key:
// each must exist everywhere, and all nodes must agree on its state and
// version (replicas converge once healed).
func CheckLostWrites(ctx context.Context, h *history.History, cl Cluster, opt Options) CheckVerdict {
	ctx, cancel := context.WithTimeout(ctx, opt.RPOTimeout)
	defer cancel()
	v := CheckVerdict{Name: "lost_writes"}
	keys, nodes := ackedKeys(h), cl.Nodes()
	infos := make([][]KeyInfo, len(keys))
	errs := make([][]error, len(keys))
	var tasks []func(context.Context)
	for ki, key := range keys {
		infos[ki], errs[ki] = make([]KeyInfo, len(nodes)), make([]error, len(nodes))
		for ni, node := range nodes {
			tasks = append(tasks, func(ctx context.Context) {
				errs[ki][ni] = untilAnswered(ctx, func() (err error) {
					infos[ki][ni], err = cl.Describe(ctx, node, key)
					return err
				})
			})
		}
	}
	run(ctx, opt.Parallelism, tasks)
	timedOut := 0
	for ki, key := range keys {
		agreed, ref := true, -1
		for ni, node := range nodes {
			err := errs[ki][ni]
			switch {
			case err == nil:
				v.Checked++
				if ref < 0 {
					ref = ni
				}
				agreed = agreed && infos[ki][ni] == infos[ki][ref]
			case ctx.Err() != nil:
				timedOut++
			case errors.Is(err, client.NotFound):
				v.Checked++
				v.add(opt, Violation{Op: -1, Key: key, Node: node, Msg: fmt.Sprintf("acknowledged key %s is missing on node %s", key, node)})
			default:
				v.Checked++
				v.add(opt, Violation{Op: -1, Key: key, Node: node, Msg: fmt.Sprintf("describe key %s on node %s: %v", key, node, err)})
			}
		}
		if !agreed && ctx.Err() == nil {
			v.add(opt, Violation{Op: -1, Key: key, Msg: fmt.Sprintf("nodes disagree on key %s: %v", key, infos[ki])})
		}
	}
	conclude(&v, timedOut, "describe")
	return v
}

// sealed is one acknowledged ciphertext and what it must decrypt to.
type sealed struct {
	op   int
	key  string
	ct   []byte
	ec   map[string]string
	hash string
}

// ackedCiphertexts lists acknowledged Encrypt and GenerateDataKey results.
func ackedCiphertexts(h *history.History) []sealed {
	var out []sealed
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Outcome != history.Ok || len(op.Output.Ciphertext) == 0 {
			continue
		}
		hash := ""
		switch op.Kind {
		case history.Encrypt:
			hash = op.Input.PlaintextHash
		case history.GenerateDataKey:
			hash = op.Output.PlaintextHash
		}
		if hash != "" {
			out = append(out, sealed{op.Index, op.Key(), op.Output.Ciphertext, op.Input.Context, hash})
		}
	}
	return out
}

// sample keeps at most n of s, spread evenly (n <= 0: all).
func sample(s []sealed, n int) []sealed {
	if n <= 0 || len(s) <= n {
		return s
	}
	out := make([]sealed, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n])
	}
	return out
}

// CheckCiphertexts decrypts every acknowledged ciphertext (or a sample of
// opt.MaxCiphertexts) on every node and compares the plaintext's hash with
// the recorded one. Ciphertexts whose key is not ENABLED now are skipped:
// refusing them is correct.
func CheckCiphertexts(ctx context.Context, h *history.History, cl Cluster, opt Options) CheckVerdict {
	ctx, cancel := context.WithTimeout(ctx, opt.RPOTimeout)
	defer cancel()
	v := CheckVerdict{Name: "ciphertexts"}
	nodes := cl.Nodes()
	all := ackedCiphertexts(h)
	usable, timedOut := usableKeys(ctx, cl, nodes, all, opt)
	var todo []sealed
	skipped := 0
	for _, s := range all {
		if usable[s.key] {
			todo = append(todo, s)
		} else {
			skipped++
		}
	}
	todo = sample(todo, opt.MaxCiphertexts)
	errs := make([][]error, len(todo))
	var tasks []func(context.Context)
	for si, s := range todo {
		errs[si] = make([]error, len(nodes))
		for ni, node := range nodes {
			tasks = append(tasks, func(ctx context.Context) {
				var pt []byte
				err := untilAnswered(ctx, func() (err error) {
					pt, err = cl.Decrypt(ctx, node, s.ct, s.ec)
					return err
				})
				if err == nil && history.HashPlaintext(pt) != s.hash {
					err = errors.New("plaintext differs from the one encrypted")
				}
				errs[si][ni] = err
			})
		}
	}
	run(ctx, opt.Parallelism, tasks)
	for si, s := range todo {
		for ni, node := range nodes {
			switch err := errs[si][ni]; {
			case err == nil:
				v.Checked++
			case ctx.Err() != nil:
				timedOut++
			default:
				v.Checked++
				v.add(opt, Violation{Op: s.op, Key: s.key, Node: node, Msg: fmt.Sprintf(
					"ciphertext of op #%d (key %s) on node %s: %v", s.op, s.key, node, err)})
			}
		}
	}
	v.Notes = append(v.Notes, fmt.Sprintf("%d acknowledged ciphertexts, %d checked on %d nodes, %d skipped (key not enabled)",
		len(all), len(todo), len(nodes), skipped))
	conclude(&v, timedOut, "decrypt")
	return v
}

// usableKeys asks the first node that answers whether each key is ENABLED.
func usableKeys(ctx context.Context, cl Cluster, nodes []string, all []sealed, opt Options) (map[string]bool, int) {
	seen := map[string]bool{}
	var keys []string
	for _, s := range all {
		if !seen[s.key] {
			seen[s.key] = true
			keys = append(keys, s.key)
		}
	}
	states := make([]string, len(keys))
	var tasks []func(context.Context)
	for i, key := range keys {
		tasks = append(tasks, func(ctx context.Context) {
			for _, node := range nodes {
				if info, err := cl.Describe(ctx, node, key); err == nil {
					states[i] = info.State
					return
				}
			}
		})
	}
	run(ctx, opt.Parallelism, tasks)
	usable := map[string]bool{}
	timedOut := 0
	for i, key := range keys {
		usable[key] = states[i] == history.StateEnabled
		if states[i] == "" && ctx.Err() != nil {
			timedOut++
		}
	}
	return usable, timedOut
}

// conclude sets v's Result from its counts: a violation fails; calls cut
// short by the timeout with nothing found make it inconclusive.
func conclude(v *CheckVerdict, timedOut int, what string) {
	if timedOut > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d %s calls cut short by the RPO timeout", timedOut, what))
	}
	switch {
	case v.Violations > 0:
		v.Result = Fail
	case timedOut > 0:
		v.Result = Inconclusive
	default:
		v.Result = Pass
	}
}

// untilAnswered calls f until the node gives an answer: a busy or
// catching-up node's Unavailable or an attempt's DeadlineExceeded says
// nothing about what it holds, so neither may count as a lost write
// (a loaded machine produced exactly that). It retries until ctx ends;
// the last error then counts as cut short by the RPO timeout.
func untilAnswered(ctx context.Context, f func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := f()
		code := client.CodeOf(err)
		if err == nil || (code != codes.Unavailable && code != codes.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// run calls every task with at most n running at once; tasks left when
// ctx ends still run (they see the ended ctx and return at once).
func run(ctx context.Context, n int, tasks []func(context.Context)) {
	work := make(chan func(context.Context))
	var wg sync.WaitGroup
	for range min(n, len(tasks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				t(ctx)
			}
		}()
	}
	for _, t := range tasks {
		work <- t
	}
	close(work)
	wg.Wait()
}
