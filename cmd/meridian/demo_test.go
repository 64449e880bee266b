package main

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
)

// rowOf returns the fields of node id's row in a rendered table.
func rowOf(t *testing.T, table, id string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return f
		}
	}
	t.Fatalf("no row for %s in:\n%s", id, table)
	return nil
}

// While no node leads, the table says a leader is being elected and why
// the last one was lost, and each node's ROLE tells a candidate from a
// node waiting for the outcome (it showed "-" everywhere before).
func TestDemoStatusShowsElection(t *testing.T) {
	at := time.Date(2026, 1, 2, 9, 4, 47, 0, time.UTC)
	electing := demoStatus{
		rows: []demoRow{
			{id: "node-1", region: "us-east", state: "Follower", term: 4},
			{id: "node-2", region: "eu-west", state: "Candidate", term: 5},
			{id: "node-3", region: "ap-south", state: "Follower", term: 5},
		},
		change: &cluster.LeaderChange{At: at, From: "node-1", Term: 5,
			Reason: "node-2 lost contact with the leader node-1 (heartbeat timeout)"},
	}
	table := renderDemoStatus(electing)
	for _, want := range []string{
		"electing a leader... (term 5)",
		"last leader change 09:04:47: node-1 -> none (term 5): node-2 lost contact with the leader node-1 (heartbeat timeout)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "leader: ") {
		t.Errorf("table names a leader during an election:\n%s", table)
	}
	for id, role := range map[string]string{"node-1": "electing...", "node-2": "candidate", "node-3": "electing..."} {
		if f := rowOf(t, table, id); f[2] != role {
			t.Errorf("%s ROLE = %q, want %q:\n%s", id, f[2], role, table)
		}
	}

	led := demoStatus{
		rows: []demoRow{
			{id: "node-1", region: "us-east", state: "Follower", leaderID: "node-2", suffrage: "voter", term: 5, applied: 9},
			{id: "node-2", region: "eu-west", state: "Leader", leaderID: "node-2", suffrage: "voter", term: 5, applied: 9},
			{id: "node-3", region: "ap-south", state: "Follower", leaderID: "node-2", suffrage: "nonvoter", term: 5, applied: 8},
		},
		change: &cluster.LeaderChange{At: at, From: "node-1", To: "node-2", Term: 5,
			Reason: "node-2 lost contact with the leader node-1 (heartbeat timeout)"},
	}
	table = renderDemoStatus(led)
	if !strings.Contains(table, "leader: node-2 (eu-west), term 5") || strings.Contains(table, "electing") {
		t.Errorf("led table:\n%s", table)
	}
	if !strings.Contains(table, "node-1 -> node-2 (term 5)") {
		t.Errorf("led table lacks the change:\n%s", table)
	}
	for id, want := range map[string][]string{
		"node-1": {"voter", "Follower"}, "node-2": {"voter", "*", "Leader"}, "node-3": {"nonvoter", "Follower"},
	} {
		if f := rowOf(t, table, id); strings.Join(f[2:2+len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("%s row %v, want ROLE.. %v", id, f, want)
		}
	}

	// A non-terminal reprints only real changes: not a new applied index
	// or contact age.
	later := demoStatus{rows: append([]demoRow(nil), led.rows...), change: led.change}
	later.rows[0].applied, later.rows[0].contact = 12, 40*time.Millisecond
	if renderDemoStatus(led.withoutCounters()) != renderDemoStatus(later.withoutCounters()) {
		t.Error("counters alone changed the change-detection key")
	}
}

// demoRun is a `meridian demo` running in-process.
type demoRun struct {
	out, errOut *syncBuf
	cancel      context.CancelFunc
	done        chan int
}

var demoAddrRE = regexp.MustCompile(`export MERIDIAN_ADDR=(\S+)`)

// startDemoCmd runs `meridian demo args...` on free ports and returns once
// its cluster is up, with the first node's API address. The test ends it
// with stop (or, failing that, at cleanup).
func startDemoCmd(t *testing.T, args ...string) (*demoRun, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoRun{out: &syncBuf{}, errOut: &syncBuf{}, cancel: cancel, done: make(chan int, 1)}
	args = append([]string{"demo", "--base-port", "0"}, args...)
	go func() { d.done <- run(ctx, args, strings.NewReader(""), d.out, d.errOut) }()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(2 * time.Minute) // a loaded machine, -race
	for time.Now().Before(deadline) {
		if m := demoAddrRE.FindStringSubmatch(d.out.String()); m != nil {
			return d, m[1]
		}
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("demo exited %d: %s", code, d.errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("demo never came up: %s", d.errOut.String())
	return nil, ""
}

// stop is Ctrl-C: it returns the exit code and what was logged after it.
func (d *demoRun) stop(t *testing.T) (code int, logs string) {
	t.Helper()
	mark := len(d.errOut.String())
	d.cancel()
	select {
	case code = <-d.done:
		d.done <- code // stop is idempotent
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop within a minute of Ctrl-C")
	}
	return code, d.errOut.String()[mark:]
}

// Ctrl-C stops the demo cleanly: a clean shutdown logs no error (it used
// to log a dozen or more "use of closed network connection" errors per
// node: raft's accept loop, replication to peers already gone, gossip).
// Two nodes per region, so that leaders, voters and non-voters, and
// nodes in one region, all stop.
func TestDemoCtrlCLogsNoErrors(t *testing.T) {
	d, _ := startDemoCmd(t, "--regions", "us-east,eu-west", "--nodes-per-region", "2",
		"--log-level", "info", "--status-interval", "100ms")
	// The banner names each node's cluster plane (what a server's --join
	// names), apart from its API, and something listens there.
	for _, id := range []string{"node-1", "node-4"} {
		f := rowOf(t, d.out.String(), id) // NODE REGION API CLUSTER METRICS
		if len(f) != 5 || f[3] == f[2] {
			t.Fatalf("banner row %v: want NODE REGION API CLUSTER METRICS, the cluster plane apart from the API", f)
		}
		conn, err := net.DialTimeout("tcp", f[3], 10*time.Second)
		if err != nil {
			t.Fatalf("%s's cluster plane %s from the banner: %v", id, f[3], err)
		}
		conn.Close()
	}
	// Let the table draw at least once, so its watcher is stopped too.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(d.out.String(), "status:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	code, logs := d.stop(t)
	if code != 0 {
		t.Fatalf("demo exited %d after Ctrl-C: %s", code, logs)
	}
	if !strings.Contains(d.out.String(), "stopped.") {
		t.Errorf("demo did not say it stopped:\n%s", d.out.String())
	}
	if !strings.Contains(logs, `msg="node closed"`) {
		t.Fatalf("captured no shutdown logs:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("shutdown logged an error: %s", line)
		}
	}
}

// --chaos makes the demo's nodes advertise that they may be disrupted, as
// `server --chaos` does: `chaos run --harness remote` runs against it, and
// refuses a demo started without it.
func TestDemoChaosFlagAdmitsRemoteHarness(t *testing.T) {
	chaosRun := func(addr string) (string, int) {
		out, errOut, code := runCLI(t, "", "chaos", "run", "--harness", "remote", "--addr", addr, "--insecure",
			"--scenario", "disable-key", "--duration", "1s", "--seed", "1")
		return out + errOut, code
	}
	t.Run("without --chaos", func(t *testing.T) {
		d, addr := startDemoCmd(t, "--regions", "us-east", "--status-interval", "0")
		out, code := chaosRun(addr)
		if code != exitError || !strings.Contains(out, "not started with chaos enabled") {
			t.Fatalf("chaos run against a demo without --chaos: exit %d:\n%s", code, out)
		}
		if code, logs := d.stop(t); code != 0 {
			t.Fatalf("demo exited %d: %s", code, logs)
		}
	})
	t.Run("with --chaos", func(t *testing.T) {
		d, addr := startDemoCmd(t, "--regions", "us-east,eu-west", "--status-interval", "0", "--chaos")
		out, code := chaosRun(addr)
		if code != 0 {
			t.Fatalf("chaos run against a demo with --chaos: exit %d:\n%s", code, out)
		}
		if code, logs := d.stop(t); code != 0 {
			t.Fatalf("demo exited %d: %s", code, logs)
		}
	})
}
