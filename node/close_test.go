package node_test

import (
	"strings"
	"testing"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/nodetest"
)

// errorLines returns the ERROR records logged since mark (a length of
// the log).
func errorLines(logs *nodetest.LogSink, mark int) []string {
	var out []string
	for _, line := range strings.Split(string(logs.Bytes()[mark:]), "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

// A deliberate stop is not an error. One node stopping alone (a server's
// Ctrl-C or a restart) announces by gossip that it is leaving, so once the
// leader has heard that, its failing heartbeats to it until autopilot
// removes it are not errors; nodes stopped together by CloseAll (the demo) know they all
// are going, so none reports the others' closed connections. Either way
// no ERROR record is logged (there used to be a dozen per node).
func TestDeliberateStopsLogNoErrors(t *testing.T) {
	c := startRegions(t, 1, nil)
	leader := c.LeaderNode()
	follower := -1
	for i, n := range c.Nodes {
		if n != leader {
			follower = i
			break
		}
	}
	id := c.Cfgs[follower].NodeID

	// The leader can only know the stop was deliberate once the gossip
	// announcement has reached it; on a loaded machine its heartbeats may
	// fail first (and say so), so the check starts when the leader's
	// membership shows the node leaving and lasts until autopilot removes
	// it: every failure the leader sees in that window is an expected one.
	c.Stop(follower)
	testwait.Eventually(t, nodetest.WaitTimeout, "the leader to learn that "+id+" left", func() bool {
		ms, err := leader.Cluster().Members(ctxT(t))
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.ID == id {
				return m.Status == cluster.StatusLeft
			}
		}
		return true // already gone from the view
	})
	mark := len(c.Logs.Bytes())
	testwait.Eventually(t, nodetest.WaitTimeout, id+" removed from raft by autopilot", func() bool { return !inRaft(c, id) })
	for _, line := range errorLines(c.Logs, mark) {
		t.Errorf("stopping %s alone logged an error after the leader knew it left: %s", id, line)
	}

	mark = len(c.Logs.Bytes())
	live := c.Live()
	if err := node.CloseAll(live...); err != nil {
		t.Fatalf("CloseAll: %v", err)
	}
	// Closed: the harness's cleanup closes them again, which is a no-op.
	logs := string(c.Logs.Bytes()[mark:])
	if strings.Count(logs, `msg="node closed"`) != len(live) {
		t.Fatalf("want %d nodes closed; logs:\n%s", len(live), logs)
	}
	for _, line := range errorLines(c.Logs, mark) {
		t.Errorf("CloseAll logged an error: %s", line)
	}
}
