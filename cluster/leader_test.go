package cluster_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/internal/testwait"
)

// logCapture collects every node's slog records as JSON objects.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// option routes a node's logs here (debug and up), named by node.
func (c *logCapture) option(cfg *cluster.Config) {
	h := slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})
	cfg.Logger = slog.New(h).With("node", cfg.NodeID)
}

// records returns the records logged so far that match msg.
func (c *logCapture) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// When the leader dies, the node elected in its place logs, at info, the
// change from the old leader to itself with the reason: it lost contact
// with the old leader (a heartbeat timeout).
func TestLeaderChangeIsLoggedWithReason(t *testing.T) {
	logs := &logCapture{}
	c := clustertest.StartCluster(t, 3, logs.option)
	old := c.Leader()
	old.Kill()
	nw := c.WaitForNewLeader(old)

	var got map[string]any
	testwait.Eventually(t, clustertest.WaitTimeout, "the new leader to log its election", func() bool {
		for _, r := range logs.records(t, "leader changed") {
			if r["node"] == nw.ID && r["to"] == nw.ID && r["from"] == old.ID {
				got = r
				return true
			}
		}
		return false
	})
	reason, _ := got["reason"].(string)
	if got["level"] != "INFO" || !strings.Contains(reason, "heartbeat") || got["term"] == nil {
		t.Fatalf("leader change record %v: want level INFO, a term and a heartbeat-timeout reason", got)
	}
	t.Logf("logged: %v", got)
	ch, ok := nw.LastLeaderChange()
	if !ok || ch.From != old.ID || ch.To != nw.ID || ch.Reason != reason {
		t.Fatalf("LastLeaderChange = %+v, %v; want the logged change", ch, ok)
	}
	if st := nw.Stats(); st.LeaderChanges < 2 { // its start's leader, then itself
		t.Fatalf("LeaderChanges = %d, want at least 2", st.LeaderChanges)
	}
}
