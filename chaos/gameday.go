package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/chaos/workload"
	"github.com/meridiankms/meridian/client"
)

// GameDay is the accidental-key-disable drill's outcome: the hot key is
// disabled as if by mistake, the workload's errors reveal it, automation
// re-enables it, and each leg is timed. Offsets are from the history's
// start; the legs are durations.
type GameDay struct {
	Key string `json:"key"`
	// DisabledAtMS is when the disable was acknowledged.
	DisabledAtMS float64 `json:"disabled_at_ms"`
	// DetectedAfterMS: from the disable's acknowledgement to the first
	// DisabledException a workload caller received.
	DetectedAfterMS float64 `json:"detected_after_ms"`
	// ReenabledAfterMS: from detection to the re-enable's acknowledgement.
	ReenabledAfterMS float64 `json:"reenabled_after_ms"`
	// RestoredAfterMS: from the re-enable's acknowledgement to the first
	// data-plane success on the key invoked after it: a workload call, or
	// the operator's probe when the run ended first.
	RestoredAfterMS float64 `json:"restored_after_ms"`
	// ImpactMS: from the disable's acknowledgement to that success: how
	// long callers were refused.
	ImpactMS float64 `json:"impact_ms"`
	// RefusedCalls counts the data-plane calls on the key refused as
	// disabled.
	RefusedCalls int `json:"refused_calls"`
	// Error says which leg did not complete ("" when all did).
	Error string `json:"error,omitempty"`
}

// runGameDay performs the disable-key drill during the workload: disable
// at 30% of the run, re-enable on detection, wait for the restore. It
// acts through the workload's client of region and records its calls in
// the history as the operator's.
func runGameDay(ctx context.Context, opt Options, w *workload.Workload, rec *history.Recorder, lv *live,
	begin time.Time, region string) *GameDay {
	key := w.HotKeys()[0]
	gd := &GameDay{Key: key}
	deadline := begin.Add(opt.Duration * 90 / 100)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !workload.SleepUntil(dctx, begin.Add(opt.Duration*30/100)) {
		gd.Error = "run ended before the drill began"
		return gd
	}

	var mu sync.Mutex
	var disabledAck, enabledAck time.Duration = -1, -1
	detected, restored := make(chan time.Duration, 1), make(chan time.Duration, 1)
	lv.setHook(func(op history.Op) {
		if op.KeyID != key || !op.Kind.IsDataPlane() {
			return
		}
		mu.Lock()
		d, e := disabledAck, enabledAck
		mu.Unlock()
		switch {
		case e >= 0 && op.Outcome == history.Ok && op.Invoke >= e:
			trySend(restored, op.Complete)
		case d >= 0 && op.Output.Error == string(client.Disabled):
			trySend(detected, op.Complete)
		}
	})
	defer lv.setHook(nil)

	if err := retryWrite(dctx, func(ctx context.Context) error { return w.SetKeyEnabled(ctx, region, key, false) }); err != nil {
		gd.Error = "disable: " + err.Error()
		return gd
	}
	mu.Lock()
	disabledAck = rec.Now()
	mu.Unlock()
	gd.DisabledAtMS = ms(disabledAck)
	opt.Logf("game day: disabled hot key %s", key)

	var det time.Duration
	select {
	case det = <-detected:
	case <-dctx.Done():
		gd.Error = "the workload never noticed the disabled key"
		// Re-enable anyway: the drill must leave the key as it found it.
		_ = retryWrite(context.WithoutCancel(ctx), func(ctx context.Context) error { return w.SetKeyEnabled(ctx, region, key, true) })
		return gd
	}
	gd.DetectedAfterMS = ms(det - disabledAck)
	if err := retryWrite(context.WithoutCancel(dctx), func(ctx context.Context) error { return w.SetKeyEnabled(ctx, region, key, true) }); err != nil {
		gd.Error = "re-enable: " + err.Error()
		return gd
	}
	mu.Lock()
	enabledAck = rec.Now()
	mu.Unlock()
	gd.ReenabledAfterMS = ms(enabledAck - det)
	opt.Logf("game day: re-enabled hot key %s", key)
	restore := func(r time.Duration) *GameDay {
		gd.RestoredAfterMS = ms(r - enabledAck)
		gd.ImpactMS = ms(r - disabledAck)
		return gd
	}
	select {
	case r := <-restored:
		return restore(r)
	case <-ctx.Done():
		gd.Error = "no data-plane success on the key after re-enabling: " + ctx.Err().Error()
		return gd
	case <-time.After(time.Until(begin.Add(opt.Duration))):
	}
	// The workload stopped without calling the key since the re-enable (a
	// re-enable slowed by an election outlasts a short run). The operator
	// checks the key instead, one encrypt at a time, as a runbook would:
	// whether the key serves again must not hang on the run's length.
	opt.Logf("game day: the workload ended before it used the key again; probing it")
	pctx, cancel := context.WithTimeout(ctx, restoreProbeFor)
	defer cancel()
	for {
		err := w.ProbeKey(pctx, region, key)
		select {
		case r := <-restored: // the hook saw the probe's success
			return restore(r)
		default:
		}
		select {
		case <-pctx.Done():
			gd.Error = fmt.Sprintf("no data-plane success on the key within %v after re-enabling (last: %v)", restoreProbeFor, err)
			return gd
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restoreProbeFor bounds the operator's probes after a run that ended
// before the key was used again.
const restoreProbeFor = 30 * time.Second

func trySend(c chan time.Duration, d time.Duration) {
	select {
	case c <- d:
	default:
	}
}

// retryWrite calls f until it succeeds, a definite refusal, or ctx ends:
// an operator's script retrying through an outage. Each try is a new
// request; enable and disable are idempotent.
func retryWrite(ctx context.Context, f func(context.Context) error) error {
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if history.Classify(history.DisableKey, err) == history.Failed {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
