package inproc

import (
	"context"
	"errors"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/client"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, h *Harness, region string) *client.Client {
	t.Helper()
	cfg := h.ClientConfig(region)
	cfg.RefreshInterval, cfg.DownFor, cfg.AttemptTimeout = time.Second, time.Second, time.Second
	cl, err := client.New(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func startHarness(t *testing.T) *Harness {
	t.Helper()
	h, err := New(ctxT(t, 60*time.Second), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestHarnessFaults drives each harness operation once on a 3-region
// cluster and checks the cluster's answer: a killed leader is replaced and
// rejoins; a frozen node's gate holds its calls; a failed HSM makes its node
// refuse crypto that needs it; a wiped node comes back with the keys made
// while it was away.
func TestHarnessFaults(t *testing.T) {
	h := startHarness(t)
	ctx := ctxT(t, 90*time.Second)
	nodes, _ := h.Nodes(ctx)
	if len(nodes) != 3 || len(chaos.Regions(nodes)) != 3 {
		t.Fatalf("nodes = %+v, want 3 in 3 regions", nodes)
	}
	cl := newClient(t, h, nodes[0].Region)
	key, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{Description: "harness"})
	if err != nil {
		t.Fatal(err)
	}

	// Kill the leader: another takes over and writes go on.
	old, err := h.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Kill(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{Description: "after kill"}); err != nil {
		t.Fatalf("write after killing the leader: %v", err)
	}
	if id, err := h.Leader(ctx); err != nil || id == old {
		t.Fatalf("leader after kill = %q, %v; want another than %s", id, err, old)
	}
	if err := h.Restart(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}

	// Freeze a node: a pinned call to it hangs until its deadline; after
	// the thaw it answers again.
	victim := nodes[2]
	pcfg := client.DefaultConfig(victim.APIAddr)
	pcfg.Insecure, pcfg.DisableDiscovery, pcfg.MaxAttempts = true, true, 1
	pin, err := client.New(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	if err := h.Freeze(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = pin.DescribeKey(short, &apiv1.DescribeKeyRequest{KeyId: key.GetKeyMetadata().GetKeyId()})
	cancel()
	if client.CodeOf(err).String() != "DeadlineExceeded" {
		t.Fatalf("describe on a frozen node: %v, want DeadlineExceeded", err)
	}
	if err := h.Thaw(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pin.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: key.GetKeyMetadata().GetKeyId()}); err != nil {
		t.Fatalf("describe after thaw: %v", err)
	}

	// Wipe a node: it comes back empty, is enrolled, and catches up.
	if err := h.Kill(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	made, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{Description: "while wiped"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Wipe(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Node(victim.ID).FSM().Key(made.GetKeyMetadata().GetKeyId()); !ok {
		t.Fatalf("wiped node %s lacks key %s after catching up", victim.ID, made.GetKeyMetadata().GetKeyId())
	}

	// Unknown nodes are refused with the sentinel.
	if err := h.Kill(ctx, "node-99"); !errors.Is(err, chaos.ErrUnknownNode) {
		t.Fatalf("kill node-99: %v, want ErrUnknownNode", err)
	}
}
