package inproc

import (
	"errors"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/node"
)

// TestRemoteHarnessRefusals points the address harness at a cluster whose
// nodes do not advertise chaos: the runner refuses it and says why; with
// the override it runs the client-side drill but refuses faults it cannot
// make from outside.
func TestRemoteHarnessRefusals(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	h, err := New(ctx, Config{Dir: t.TempDir(), Tweak: func(c *node.Config) { c.BuildVersion = "1.0.0" }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nodes, _ := h.Nodes(ctx)
	r, err := chaos.NewRemote(ctx, chaos.RemoteConfig{Addrs: []string{nodes[0].APIAddr}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	_, err = chaos.Run(ctx, chaos.Options{Scenario: "disable-key", Duration: 4 * time.Second, Harness: r})
	if !errors.Is(err, chaos.ErrNotChaosEnabled) {
		t.Fatalf("run against a cluster without chaos enabled: %v, want ErrNotChaosEnabled", err)
	}
	_, err = chaos.Run(ctx, chaos.Options{Scenario: "kill-leader", Duration: 4 * time.Second, Harness: r, Force: true})
	if !errors.Is(err, chaos.ErrUnsupported) {
		t.Fatalf("kill-leader through the address harness: %v, want ErrUnsupported", err)
	}
	got, err := r.Nodes(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("remote nodes = %+v, %v; want 3", got, err)
	}
	if _, err := r.Leader(ctx); err != nil {
		t.Fatalf("remote leader: %v", err)
	}
	rep, err := chaos.Run(ctx, chaos.Options{Scenario: "disable-key", Duration: 5 * time.Second, Harness: r, Force: true, Rate: 30})
	if err != nil {
		t.Fatalf("forced disable-key through the address harness: %v", err)
	}
	if !rep.Passed || rep.GameDay == nil || rep.GameDay.Error != "" {
		t.Fatalf("forced disable-key: passed %v, game day %+v, notes %v\n%v", rep.Passed, rep.GameDay, rep.Notes, rep.Verdict)
	}
}
