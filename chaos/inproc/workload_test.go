package inproc

import (
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/chaos/workload"
)

// TestWorkloadBoundedAndRecorded: a workload with an op budget stops by
// itself long before its duration, and every call it made is in the
// history, completed, with the node that served it.
func TestWorkloadBoundedAndRecorded(t *testing.T) {
	h := startHarness(t)
	ctx := ctxT(t, time.Minute)
	nodes, _ := h.Nodes(ctx)
	rec := history.NewRecorder()
	w, err := workload.New(ctx, workload.Config{Regions: chaos.Regions(nodes), ClientConfig: h.ClientConfig,
		Duration: time.Minute, MaxOps: 60, Rate: 200, Recorder: rec, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("60 ops took %v: the op budget did not stop the run", took)
	}
	hist := rec.History()
	setup := len(w.HotKeys()) + 1
	if len(hist.Ops) != 60+setup {
		t.Fatalf("history holds %d ops, want 60 + %d setup", len(hist.Ops), setup)
	}
	if err := hist.Validate(); err != nil {
		t.Fatal(err)
	}
	kinds := map[history.Kind]int{}
	for _, op := range hist.Ops {
		kinds[op.Kind]++
		if op.Outcome == history.Ok && op.Output.Node == "" {
			t.Errorf("op %d (%s) succeeded with no serving node recorded", op.Index, op.Kind)
		}
	}
	if kinds[history.Encrypt] == 0 || kinds[history.CreateKey] < setup {
		t.Errorf("kinds %v: want encrypts and the setup's creates", kinds)
	}
	// Every call on a key, from any region's client, carried its create's
	// consistency token: no node answers NotFound for a key just created.
	created := map[string]uint64{}
	for _, op := range hist.Ops {
		if op.Kind == history.CreateKey && op.Outcome == history.Ok {
			created[op.Key()] = op.Output.CommitIndex
		}
	}
	for _, op := range hist.Ops {
		if idx, ok := created[op.KeyID]; ok && op.Output.Token < idx {
			t.Errorf("op %d (%s on %s) carried token %d, below its create's commit index %d", op.Index, op.Kind, op.KeyID, op.Output.Token, idx)
		}
	}
}
