package chaos

import (
	"context"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/chaos/workload"
	"github.com/meridiankms/meridian/internal/wait"
)

// writeProbeFor bounds the runner's write probes after a run that ended
// before a write succeeded after some fault.
const writeProbeFor = 30 * time.Second

// probeWritesBack makes sure the report can say when writes came back
// after each fault. A short run on a busy machine can end while the
// cluster is still electing or catching up, with no write acknowledged
// after the last fault; whether writes come back must not hang on the
// run's length. Then the runner writes as an operator would (one create
// at a time, every 100 ms, across the regions' clients) until one is
// acknowledged or writeProbeFor passes. The probes are recorded like any
// call, so the checker judges them and the failover figure shows them
// (Failover.Probed).
func probeWritesBack(ctx context.Context, opt Options, w *workload.Workload, rec *history.Recorder,
	events []FaultEvent, regions []string) {
	if !writeMissingAfter(rec.History(), events) || len(regions) == 0 {
		return
	}
	opt.Logf("the workload ended before a write succeeded after every fault; probing writes")
	pctx, cancel := context.WithTimeout(ctx, writeProbeFor)
	defer cancel()
	i := 0
	err := wait.Until(pctx, 100*time.Millisecond, func() error {
		i++
		return w.ProbeWrite(pctx, regions[(i-1)%len(regions)])
	})
	if err != nil {
		opt.Logf("write probe: no write acknowledged within %v: %v", writeProbeFor, err)
		return
	}
	opt.Logf("write probe: ok")
}

// writeMissingAfter reports whether some fault has no acknowledged write
// invoked at or after its injection: the report's failover figure would
// say "never".
func writeMissingAfter(h *history.History, events []FaultEvent) bool {
	var writes []*history.Op
	for i := range h.Ops {
		if h.Ops[i].Kind.IsWrite() {
			writes = append(writes, &h.Ops[i])
		}
	}
	for _, f := range failovers(events, writes, 0) {
		if f.FirstWriteMS < 0 {
			return true
		}
	}
	return false
}
