package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// step is one observation fed to a leaderWatch.
type step struct {
	state  raft.RaftState // non-zero: a state change
	age    time.Duration  // contact age for a turn to candidate
	vote   *raft.RequestVoteRequest
	leader *string // a LeaderObservation
	term   uint64
}

func leaderIs(id string, term uint64) step { return step{leader: &id, term: term} }
func noLeader(term uint64) step            { return leaderIs("", term) }
func becomes(s raft.RaftState, age time.Duration) step {
	return step{state: s, age: age}
}
func voteFrom(id string, term uint64, transfer bool) step {
	return step{vote: &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte(id)}, Term: term, LeadershipTransfer: transfer}}
}

// The reason a node gives for a leader change, from what raft showed it.
func TestLeaderWatchReasons(t *testing.T) {
	const hb = 100 * time.Millisecond
	started := []step{leaderIs("n1", 2)}
	cases := []struct {
		name    string
		resumed bool
		leaving string // a node gossip reports as leaving
		steps   []step
		msg     string // the last event's message
		from    string
		to      string
		reason  string
	}{
		{"first leader after a start", false, "", started, "leader changed", "", "n1", "n2 started"},
		{"first leader after a restart", true, "", started, "leader changed", "", "n1", "n2 restarted"},
		{"this node's heartbeat timed out and it won", false, "",
			append(started, noLeader(2), becomes(raft.Candidate, 3*hb), leaderIs("n2", 3)),
			"leader changed", "n1", "n2", "n2 lost contact with the leader n1 (heartbeat timeout)"},
		{"another node called the election", false, "",
			append(started, voteFrom("n3", 3, false), noLeader(3), leaderIs("n3", 3)),
			"leader changed", "n1", "n3", "n3 called an election (its heartbeat from the leader timed out)"},
		{"a leadership transfer seen by a voter", false, "",
			append(started, voteFrom("n3", 3, true), noLeader(3), leaderIs("n3", 3)),
			"leader changed", "n1", "n3", "leadership transfer to n3"},
		{"a leadership transfer to this node", false, "",
			append(started, noLeader(2), becomes(raft.Candidate, hb/10), leaderIs("n2", 3)),
			"leader changed", "n1", "n2", "leadership transfer to n2"},
		{"this leader stepped down", false, "",
			[]step{becomes(raft.Candidate, -1), becomes(raft.Leader, 0), leaderIs("n2", 2),
				noLeader(2), becomes(raft.Follower, 0), leaderIs("n1", 3)},
			"leader changed", "n2", "n1", "n2 stepped down as leader: it could not reach a quorum within the leader lease"},
		{"the old leader left (shutdown or restart)", false, "n1",
			append(started, noLeader(2), becomes(raft.Candidate, 3*hb), leaderIs("n3", 3)),
			"leader changed", "n1", "n3", "the leader n1 left the cluster (shutdown or restart)"},
		{"a newer leader heard of late", false, "",
			append(started, noLeader(4), leaderIs("n3", 4)),
			"leader changed", "n1", "n3", "n2 heard from a newer leader (it missed the election)"},
		{"a stale vote explains nothing", false, "",
			append(started, voteFrom("n3", 2, false), noLeader(4), leaderIs("n4", 4)),
			"leader changed", "n1", "n4", "n2 heard from a newer leader (it missed the election)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &leaderWatch{self: "n2", resumed: tc.resumed, heartbeat: hb, state: raft.Follower,
				leaving: func(id string) bool { return id == tc.leaving }}
			var last *leaderEvent
			now := time.Unix(1000, 0)
			for _, s := range tc.steps {
				now = now.Add(time.Millisecond)
				var evs []leaderEvent
				switch {
				case s.vote != nil:
					w.voted(*s.vote)
				case s.leader != nil:
					evs = w.leaderSeen(*s.leader, s.term, now)
				default:
					w.stateChanged(s.state, s.age)
				}
				for i := range evs {
					last = &evs[i]
				}
			}
			if last == nil {
				t.Fatal("no event")
			}
			c := last.change
			if last.msg != tc.msg || c.From != tc.from || c.To != tc.to || c.Reason != tc.reason {
				t.Fatalf("got %q %s -> %s: %q\nwant %q %s -> %s: %q", last.msg, c.From, c.To, c.Reason,
					tc.msg, tc.from, tc.to, tc.reason)
			}
		})
	}
}

// A lost leader is reported once no leader has been known for a
// heartbeat timeout, with its reason; a blip (the same leader back in
// the same term) before then is no event at all.
func TestLeaderWatchLostAndBlip(t *testing.T) {
	const hb = 100 * time.Millisecond
	w := &leaderWatch{self: "n2", heartbeat: hb, state: raft.Follower}
	t0 := time.Unix(1000, 0)
	w.leaderSeen("n1", 2, t0)

	w.leaderSeen("", 2, t0.Add(time.Second))
	if evs := w.flush(t0.Add(time.Second + hb/2)); len(evs) != 0 {
		t.Fatalf("loss reported before a heartbeat timeout: %+v", evs)
	}
	if evs := w.leaderSeen("n1", 2, t0.Add(time.Second+hb/2)); len(evs) != 0 {
		t.Fatalf("a blip was reported: %+v", evs)
	}

	w.leaderSeen("", 2, t0.Add(2*time.Second))
	w.stateChanged(raft.Candidate, 2*hb)
	due, ok := w.lostDue()
	if !ok || !due.Equal(t0.Add(2*time.Second+hb)) {
		t.Fatalf("lostDue = %v, %v", due, ok)
	}
	evs := w.flush(due)
	if len(evs) != 1 || evs[0].msg != "leader lost" || evs[0].change.From != "n1" || evs[0].change.To != "" ||
		evs[0].change.Reason != "n2 lost contact with the leader n1 (heartbeat timeout)" {
		t.Fatalf("flush = %+v", evs)
	}
	if _, ok := w.lostDue(); ok {
		t.Fatal("a reported loss is still due")
	}
	evs = w.leaderSeen("n3", 3, due.Add(hb))
	if len(evs) != 1 || evs[0].msg != "leader changed" || !evs[0].newLeader || evs[0].after != 2*hb ||
		evs[0].change.Reason != "n2 lost contact with the leader n1 (heartbeat timeout)" {
		t.Fatalf("new leader = %+v", evs)
	}
}
