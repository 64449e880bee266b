package node

import (
	"strings"
	"testing"
)

// errorLines returns the ERROR records logged since mark (a length of
// the log).
func errorLines(logs *logSink, mark int) []string {
	var out []string
	for _, line := range strings.Split(string(logs.Bytes()[mark:]), "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

// A deliberate stop is not an error. One node stopping alone (a server's
// Ctrl-C or a restart) announces by gossip that it is leaving, so the
// leader's failing heartbeats to it until autopilot removes it are not
// errors; nodes stopped together by CloseAll (the demo) know they all
// are going, so none reports the others' closed connections. Either way
// no ERROR record is logged (there used to be a dozen per node).
func TestDeliberateStopsLogNoErrors(t *testing.T) {
	c := startRegions(t, 1, nil)
	leader := c.leaderNode()
	follower := -1
	for i, n := range c.nodes {
		if n != leader {
			follower = i
			break
		}
	}
	id := c.cfgs[follower].NodeID

	mark := len(c.logs.Bytes())
	c.stop(follower)
	c.waitFor(id+" removed from raft by autopilot", func() bool { return !c.inRaft(id) })
	for _, line := range errorLines(c.logs, mark) {
		t.Errorf("stopping %s alone logged an error: %s", id, line)
	}

	mark = len(c.logs.Bytes())
	live := c.live()
	if err := CloseAll(live...); err != nil {
		t.Fatalf("CloseAll: %v", err)
	}
	for i := range c.nodes {
		c.nodes[i] = nil // closed: the harness's cleanup skips them
	}
	logs := string(c.logs.Bytes()[mark:])
	if strings.Count(logs, `msg="node closed"`) != len(live) {
		t.Fatalf("want %d nodes closed; logs:\n%s", len(live), logs)
	}
	for _, line := range errorLines(c.logs, mark) {
		t.Errorf("CloseAll logged an error: %s", line)
	}
}
