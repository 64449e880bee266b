// Package checker judges a chaos run's history: is the control plane
// linearizable, was any acknowledged write lost (RPO 0), and did any node
// keep using a key longer than the staleness bound after it was disabled.
// See DESIGN.md for the model and what each check can and cannot catch.
package checker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// ErrInvalidOptions: Options.Validate refused the options.
var ErrInvalidOptions = errors.New("checker: invalid options")

// Options tune the checks.
type Options struct {
	// StalenessBound is how long after an acknowledged write a replica may
	// still answer from the state before it: the documented staleness
	// bound plus apply lag. It widens DescribeKey (and failed-write)
	// observations in the linearizability check and is the grace period
	// of the staleness check.
	StalenessBound time.Duration
	// SkipDescribe leaves DescribeKey out of the linearizability check,
	// for clusters whose keys have no staleness bound (a partitioned
	// replica may then answer from arbitrarily old state).
	SkipDescribe bool
	// LinearizabilityTimeout bounds the porcupine search; past it the
	// check is Inconclusive rather than hanging.
	LinearizabilityTimeout time.Duration
	// RPOTimeout bounds the RPO checks' calls to the cluster.
	RPOTimeout time.Duration
	// MaxCiphertexts caps how many acknowledged ciphertexts are decrypted
	// on every node (0: all); a sample is spread evenly over the history.
	MaxCiphertexts int
	// Parallelism is how many cluster calls run at once.
	Parallelism int
	// MaxDetails caps the violations kept per check (the count is exact).
	MaxDetails int
	// OutDir receives the history, the verdict and porcupine's HTML when a
	// check fails ("" writes nothing).
	OutDir string
}

// DefaultOptions are sensible for an in-process cluster with LAN timings.
func DefaultOptions() Options {
	return Options{
		StalenessBound:         2 * time.Second,
		LinearizabilityTimeout: 60 * time.Second,
		RPOTimeout:             60 * time.Second,
		Parallelism:            8,
		MaxDetails:             20,
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.StalenessBound < 0:
		return fmt.Errorf("%w: negative staleness bound %v", ErrInvalidOptions, o.StalenessBound)
	case o.LinearizabilityTimeout <= 0:
		return fmt.Errorf("%w: linearizability timeout %v", ErrInvalidOptions, o.LinearizabilityTimeout)
	case o.RPOTimeout <= 0:
		return fmt.Errorf("%w: RPO timeout %v", ErrInvalidOptions, o.RPOTimeout)
	case o.MaxCiphertexts < 0, o.Parallelism <= 0, o.MaxDetails < 0:
		return fmt.Errorf("%w: negative cap or no parallelism", ErrInvalidOptions)
	}
	return nil
}

// Result is one check's conclusion.
type Result string

const (
	// Pass: the check ran and found nothing wrong.
	Pass Result = "pass"
	// Fail: the check found at least one violation.
	Fail Result = "fail"
	// Inconclusive: the check could not finish (search timeout, cluster
	// unreachable for the RPO check); nothing was found, nothing proved.
	Inconclusive Result = "inconclusive"
	// Skipped: the check had nothing to work with (no cluster given).
	Skipped Result = "skipped"
)

// Violation is one thing a check found wrong.
type Violation struct {
	// Op is the history index of the offending op (-1 if none).
	Op   int    `json:"op"`
	Key  string `json:"key,omitempty"`
	Node string `json:"node,omitempty"`
	Msg  string `json:"msg"`
}

// CheckVerdict is one check's outcome.
type CheckVerdict struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
	// Checked counts what was examined (ops, keys x nodes, ...).
	Checked int `json:"checked"`
	// Violations counts every violation; Details keeps the first ones.
	Violations int         `json:"violations"`
	Details    []Violation `json:"details,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
}

func (c *CheckVerdict) add(opt Options, v Violation) {
	c.Violations++
	if len(c.Details) < opt.MaxDetails {
		c.Details = append(c.Details, v)
	}
}

// Verdict is the checker's judgement of one run.
type Verdict struct {
	Linearizability CheckVerdict `json:"linearizability"`
	// LostWrites: every acknowledged CreateKey exists on every node.
	LostWrites CheckVerdict `json:"lost_writes"`
	// Ciphertexts: every acknowledged ciphertext decrypts on every node.
	Ciphertexts CheckVerdict `json:"ciphertexts"`
	// Staleness: no data-plane success on a key after its disable was
	// acknowledged plus the bound.
	Staleness CheckVerdict `json:"staleness"`
	// Artifacts are the files written on failure.
	Artifacts []string `json:"artifacts,omitempty"`
}

// Checks lists the four checks in report order.
func (v *Verdict) Checks() []*CheckVerdict {
	return []*CheckVerdict{&v.Linearizability, &v.LostWrites, &v.Ciphertexts, &v.Staleness}
}

// Failed reports whether any check found a violation.
func (v *Verdict) Failed() bool {
	for _, c := range v.Checks() {
		if c.Result == Fail {
			return true
		}
	}
	return false
}

// Passed reports whether every check passed (skipped checks excepted): no
// violation and nothing inconclusive.
func (v *Verdict) Passed() bool {
	for _, c := range v.Checks() {
		if c.Result != Pass && c.Result != Skipped {
			return false
		}
	}
	return true
}

// String is a one-line summary per check.
func (v *Verdict) String() string {
	var b strings.Builder
	for _, c := range v.Checks() {
		fmt.Fprintf(&b, "%s: %s (%d checked, %d violations)\n", c.Name, c.Result, c.Checked, c.Violations)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "  - %s\n", d.Msg)
		}
	}
	return b.String()
}

// Check runs every check on h. cl is the healed cluster for the RPO checks;
// nil skips them. On failure, and when opt.OutDir is set, the history, the
// verdict and porcupine's visualisation are written there; an error is
// returned only for bad options or when writing them fails.
func Check(ctx context.Context, h *history.History, cl Cluster, opt Options) (*Verdict, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	lin := checkLinearizable(h, opt)
	v := &Verdict{Linearizability: lin.verdict, Staleness: CheckStaleness(h, opt)}
	if cl == nil {
		v.LostWrites = CheckVerdict{Name: "lost_writes", Result: Skipped}
		v.Ciphertexts = CheckVerdict{Name: "ciphertexts", Result: Skipped}
	} else {
		v.LostWrites = CheckLostWrites(ctx, h, cl, opt)
		v.Ciphertexts = CheckCiphertexts(ctx, h, cl, opt)
	}
	if !v.Failed() || opt.OutDir == "" {
		return v, nil
	}
	return v, v.writeArtifacts(h, &lin, opt)
}

// CheckLinearizable runs the linearizability check alone.
func CheckLinearizable(h *history.History, opt Options) CheckVerdict {
	return checkLinearizable(h, opt).verdict
}

func (v *Verdict) writeArtifacts(h *history.History, lin *linResult, opt Options) error {
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	hp := filepath.Join(opt.OutDir, "history.json")
	if err := h.WriteFile(hp); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	v.Artifacts = append(v.Artifacts, hp)
	// The verbose re-check only feeds the picture: bound it tighter than
	// the verdict's search so five pathological partitions cannot stall.
	const maxHTML, htmlTimeout = 5, 10 * time.Second
	paths, err := lin.visualize(opt.OutDir, maxHTML, min(opt.LinearizabilityTimeout, htmlTimeout))
	v.Artifacts = append(v.Artifacts, paths...)
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	vp := filepath.Join(opt.OutDir, "verdict.json")
	v.Artifacts = append(v.Artifacts, vp)
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	if err := os.WriteFile(vp, b, 0o644); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	return nil
}
