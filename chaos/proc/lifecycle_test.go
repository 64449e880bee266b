package proc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/chaos/proc"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/internal/wait"
)

// TestLifecycle starts a small cluster, checks the harness's view of it,
// each fault's mechanics (signals, uids, wipe and rejoin), a freeze-leader
// run, and that Close leaves neither processes nor the namespace behind.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	h := startCluster(t, []string{"us-east", "eu-west", "ap-south"}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	nodes, err := h.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("nodes = %+v, want 3", nodes)
	}
	for i, n := range nodes {
		if !n.Alive || n.Frozen {
			t.Errorf("node %s alive %v frozen %v, want alive and not frozen", n.ID, n.Alive, n.Frozen)
		}
		if want := []string{"127.0.1.1:7400", "127.0.2.1:7400", "127.0.3.1:7400"}[i]; n.APIAddr != want {
			t.Errorf("node %s api %s, want %s", n.ID, n.APIAddr, want)
		}
	}
	leader, err := h.Leader(ctx)
	if err != nil || leader != "us-east-1" {
		t.Fatalf("Leader = %q, %v; want the founder us-east-1", leader, err)
	}

	// The unsupported faults say so in the way the runner checks.
	if err := h.SetLatency(ctx, "us-east", "eu-west", 50*time.Millisecond, 0); !errors.Is(err, chaos.ErrUnsupported) {
		t.Errorf("SetLatency = %v, want ErrUnsupported", err)
	}
	if err := h.FailHSM(ctx, leader, true); !errors.Is(err, chaos.ErrUnsupported) {
		t.Errorf("FailHSM = %v, want ErrUnsupported", err)
	}
	if h.Capabilities().Has(chaos.CapLatency) || !h.Capabilities().Has(chaos.CapKill|chaos.CapPartition|chaos.CapFreeze|chaos.CapWipe) {
		t.Errorf("capabilities %v", h.Capabilities())
	}
	if err := h.Kill(ctx, "nope"); !errors.Is(err, chaos.ErrUnknownNode) {
		t.Errorf("Kill(unknown) = %v, want ErrUnknownNode", err)
	}
	if err := h.Partition(ctx, "us-east", "mars", false); !errors.Is(err, chaos.ErrBadOptions) {
		t.Errorf("Partition(unknown region) = %v, want ErrBadOptions", err)
	}

	// Every node runs inside the namespace, under its region's uid.
	out, err := exec.Command("ip", "netns", "pids", h.Namespace()).Output()
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(out))
	if len(pids) != 3 {
		t.Fatalf("processes in %s: %v, want the 3 nodes", h.Namespace(), pids)
	}
	uids := map[string]bool{}
	for _, pid := range pids {
		st, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				uids[strings.Fields(line)[1]] = true
			}
		}
	}
	if len(uids) != 3 || uids["0"] {
		t.Errorf("node uids %v: want three distinct unprivileged uids", uids)
	}

	// Freeze really stops the process; Thaw resumes it.
	if err := h.Freeze(ctx, "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	if ns, _ := h.Nodes(ctx); !ns[1].Frozen {
		t.Errorf("eu-west-1 not reported frozen")
	}
	if err := h.Thaw(ctx, "eu-west-1"); err != nil {
		t.Fatal(err)
	}

	// Wipe: the node comes back empty, is enrolled again and catches up;
	// Restart: it comes back from its own state. Both rejoin the voters.
	cl, err := client.New(ctx, h.ClientConfig("us-east"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{Description: "before wipe"})
	if err != nil {
		t.Fatal(err)
	}
	key := created.GetKeyMetadata().GetKeyId()
	for _, step := range []struct {
		name string
		do   func(context.Context, string) error
	}{{"wipe", h.Wipe}, {"restart", h.Restart}} {
		start := time.Now()
		if err := step.do(ctx, "ap-south-1"); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if err := h.WaitFormed(ctx); err != nil {
			t.Fatalf("after %s: %v", step.name, err)
		}
		t.Logf("%s ap-south-1: cluster whole again after %v", step.name, time.Since(start).Round(time.Millisecond))
		useOn(ctx, t, h, "ap-south-1", key)
	}

	// A real SIGSTOP of the leader, through the runner: when it wakes it
	// must not serve stale control-plane answers (the checker's
	// linearizability check would catch one).
	rep, err := chaos.Run(ctx, chaos.Options{Scenario: "freeze-leader", Duration: 8 * time.Second, Seed: 2,
		Rate: 40, Harness: h, OutDir: t.TempDir(), Settle: 20 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatalf("freeze-leader: %v", err)
	}
	t.Logf("freeze-leader: data plane %d/%d ok (p99 %.0f ms), control %d/%d ok, failover p50 %.0f ms, lost writes %d",
		rep.DataPlane.OK, rep.DataPlane.Calls, rep.DataPlane.P99MS, rep.Control.OK, rep.Control.Calls,
		rep.FailoverP50, rep.LostWrites)
	if !rep.Passed || rep.LostWrites != 0 {
		t.Errorf("freeze-leader failed; report:\n%s", rep.Markdown())
	}

	ns := h.Namespace()
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil {
			t.Errorf("pid %s still running after Close", pid)
		}
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), ns) {
		t.Errorf("namespace %s still exists after Close", ns)
	}
	if _, err := h.Leader(ctx); err == nil {
		t.Errorf("Leader after Close succeeded")
	}
	if err := h.Kill(ctx, "us-east-1"); !errors.Is(err, proc.ErrClosed) {
		t.Errorf("Kill after Close = %v, want ErrClosed", err)
	}
}

// useOn checks that key is in node id's own replica (a client pinned to
// it, no consistency token: it waits for the replica to catch up) and that
// the node's HSM holds the domain key to use it: after a wipe the node was
// enrolled again.
func useOn(ctx context.Context, t *testing.T, h *proc.Harness, id, key string) {
	t.Helper()
	nodes, _ := h.Nodes(ctx)
	for _, n := range nodes {
		if n.ID != id {
			continue
		}
		cfg := h.ClientConfig(n.Region)
		cfg.Addrs, cfg.DisableDiscovery, cfg.MaxAttempts = []string{n.APIAddr}, true, 1
		cl, err := client.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var ct []byte
		if err := wait.Until(ctx, 50*time.Millisecond, func() error {
			resp, err := cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: key, Plaintext: []byte("after")})
			ct = resp.GetCiphertextBlob()
			return err
		}); err != nil {
			t.Fatalf("encrypt under %s on %s: %v", key, id, err)
		}
		pt, err := cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: ct})
		if err != nil || string(pt.GetPlaintext()) != "after" {
			t.Fatalf("decrypt on %s: %q, %v", id, pt.GetPlaintext(), err)
		}
		return
	}
	t.Fatalf("no node %s", id)
}
