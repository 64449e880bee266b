package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// LeaderChange is one change of Raft leader as one node saw it.
type LeaderChange struct {
	At time.Time
	// From is the previous leader's id ("" when this node knew none); To
	// is the new one's, "" while an election runs (the leader was lost).
	From, To string
	// Term is this node's Raft term when it saw the change.
	Term uint64
	// Reason says why, in words naming the nodes involved: a heartbeat
	// timeout, a leadership transfer, a step-down, a start or restart.
	Reason string
}

// leaderWatch explains leader changes from raft's observations: which
// node called the election and why, a transfer, a step-down, a restart.
// One goroutine (watchLeader) drives it; it does no I/O, so the
// reasoning is unit-tested without a cluster.
type leaderWatch struct {
	self      string
	resumed   bool          // started on existing Raft state
	heartbeat time.Duration // raft's HeartbeatTimeout
	// leaving reports whether gossip says a node is leaving or left
	// (shutdown or restart); nil without gossip.
	leaving func(id string) bool

	state  raft.RaftState
	leader string // the leader known now, "" none
	last   string // the last leader known, for From
	seen   bool   // a leader has been known since start
	term   uint64 // the term the current leader was seen in
	cause  string // why the next change happens, once known
	lostAt time.Time
	// lost is a "leader lost" not reported yet: it is reported only once
	// no leader has been known for a heartbeat timeout, so that a quick
	// election is one "leader changed" line with its reason, and a blip
	// (raft clears the leader and hears from it again) is no line at all.
	lost *LeaderChange
	// lostReported: the current loss was reported; the same leader's
	// return is then reported too.
	lostReported bool
}

// leaderEvent is one line watchLeader logs.
type leaderEvent struct {
	msg    string // "leader lost" or "leader changed"
	change LeaderChange
	after  time.Duration // how long there was no leader, if there was a gap
	// newLeader: a leader other than the last one (Stats.LeaderChanges
	// counts these, not re-elections of the same node).
	newLeader bool
}

// voted notes a vote request from a candidate: another node called an
// election, or takes over in a leadership transfer.
func (w *leaderWatch) voted(req raft.RequestVoteRequest) {
	cand := string(req.ID)
	if cand == "" || cand == w.self || (w.leader != "" && req.Term <= w.term) {
		return // a stale request changes nothing
	}
	switch {
	case req.LeadershipTransfer:
		w.cause = fmt.Sprintf("leadership transfer to %s", cand)
	case w.cause == "":
		w.cause = fmt.Sprintf("%s called an election (its heartbeat from the leader timed out)", cand)
	}
}

// stateChanged notes this node's own transition; contactAge is how long
// ago it had heard from the leader when it became a candidate.
func (w *leaderWatch) stateChanged(to raft.RaftState, contactAge time.Duration) {
	from := w.state
	w.state = to
	switch {
	case to == raft.Shutdown:
		w.cause = w.self + " is shutting down"
	case w.cause != "":
	case to == raft.Candidate && from == raft.Follower:
		w.cause = w.candidateCause(contactAge)
	case to == raft.Follower && from == raft.Leader:
		w.cause = w.self + " stepped down as leader: it could not reach a quorum within the leader lease"
	}
}

// candidateCause: raft turns candidate on a heartbeat timeout, or at once
// when the leader hands over (TimeoutNow), with a fresh contact.
func (w *leaderWatch) candidateCause(contactAge time.Duration) string {
	if contactAge >= 0 && contactAge < w.heartbeat {
		return fmt.Sprintf("leadership transfer to %s", w.self)
	}
	if w.last != "" {
		return fmt.Sprintf("%s lost contact with the leader %s (heartbeat timeout)", w.self, w.last)
	}
	return w.self + " lost contact with the leader (heartbeat timeout)"
}

// leaderSeen handles a LeaderObservation; term is this node's current term.
func (w *leaderWatch) leaderSeen(id string, term uint64, now time.Time) []leaderEvent {
	if id == w.leader {
		return nil
	}
	if id == "" {
		from := w.leader
		w.leader, w.lostAt, w.lostReported = "", now, false
		w.lost = &LeaderChange{At: now, From: from, Term: term}
		return nil
	}
	w.lost = nil
	defer func() {
		w.leader, w.last, w.seen, w.term = id, id, true, term
		w.cause, w.lostAt, w.lostReported = "", time.Time{}, false
	}()
	if w.seen && id == w.last && term == w.term {
		// The same leader in the same term: contact came back, nothing
		// changed. Said only if the loss was.
		if !w.lostReported {
			return nil
		}
		return []leaderEvent{{msg: "leader back", after: now.Sub(w.lostAt),
			change: LeaderChange{At: now, From: id, To: id, Term: term, Reason: w.self + " hears from the leader again"}}}
	}
	ch := LeaderChange{At: now, From: w.last, To: id, Term: term, Reason: w.reason(w.last, false)}
	ev := leaderEvent{msg: "leader changed", change: ch, newLeader: id != w.last}
	if !w.lostAt.IsZero() && w.seen {
		ev.after = now.Sub(w.lostAt)
	}
	return []leaderEvent{ev}
}

// lostDue is when a loss not yet reported is due to be (flush).
func (w *leaderWatch) lostDue() (time.Time, bool) {
	if w.lost == nil {
		return time.Time{}, false
	}
	return w.lost.At.Add(w.heartbeat), true
}

// flush reports a leader lost for a heartbeat timeout by now, with
// whatever explains it by then.
func (w *leaderWatch) flush(now time.Time) []leaderEvent {
	due, ok := w.lostDue()
	if !ok || now.Before(due) {
		return nil
	}
	ch := *w.lost
	w.lost, w.lostReported = nil, true
	ch.Reason = w.reason(ch.From, true)
	return []leaderEvent{{msg: "leader lost", change: ch}}
}

// reason explains the change away from the leader from; lost: no new
// leader is known yet.
func (w *leaderWatch) reason(from string, lost bool) string {
	switch {
	case !w.seen:
		if w.resumed {
			return w.self + " restarted"
		}
		return w.self + " started"
	case strings.HasPrefix(w.cause, "leadership transfer"), strings.HasSuffix(w.cause, "is shutting down"):
		return w.cause
	case from != "" && from != w.self && w.leaving != nil && w.leaving(from):
		return fmt.Sprintf("the leader %s left the cluster (shutdown or restart)", from)
	case w.cause != "":
		return w.cause
	case lost:
		// No state change: a non-voter's heartbeat timeout (it does not
		// stand for election), or one whose explanation is still queued.
		return w.candidateCause(-1)
	}
	return w.self + " heard from a newer leader (it missed the election)"
}

// leaderLog holds the latest change for LastLeaderChange.
type leaderLog struct {
	mu   sync.Mutex
	last LeaderChange
	ok   bool
	// candidateAge is how long since this node heard from the leader at
	// its last turn to candidate, taken synchronously in raft's goroutine
	// (the observer's filter) because the observation is read later.
	candidateAge atomic.Int64
}

// LastLeaderChange is the latest leader change this node saw: a new
// leader, or (To "") the loss of one while an election runs.
func (n *Node) LastLeaderChange() (LeaderChange, bool) {
	n.leaders.mu.Lock()
	defer n.leaders.mu.Unlock()
	return n.leaders.last, n.leaders.ok
}

// startLeaderWatch registers the observer now (an observation raft makes
// before it is registered is lost) and starts watchLeader.
func (n *Node) startLeaderWatch(ctx context.Context, resumed bool) {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch d := o.Data.(type) {
		case raft.RaftState:
			if d == raft.Candidate {
				age := int64(-1)
				if t := n.raft.LastContact(); !t.IsZero() {
					age = int64(time.Since(t))
				}
				n.leaders.candidateAge.Store(age)
			}
			return true
		case raft.LeaderObservation, raft.RequestVoteRequest:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	w := &leaderWatch{self: n.cfg.NodeID, resumed: resumed, heartbeat: n.cfg.HeartbeatTimeout,
		leaving: n.peerLeaving, state: raft.Follower}
	n.goBackground(func() {
		defer n.raft.DeregisterObserver(obs)
		n.watchLeader(ctx, w, ch)
	})
}

// watchLeader logs every leader change at info with its reason, keeps the
// latest for LastLeaderChange and counts new leaders for Stats.
func (n *Node) watchLeader(ctx context.Context, w *leaderWatch, ch <-chan raft.Observation) {
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	for {
		var events []leaderEvent
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			events = n.observeLeader(w, o)
			// raft sends a lost leader and the state change that explains
			// it back to back: take what is queued before reporting.
			for drained := false; !drained; {
				select {
				case o := <-ch:
					events = append(events, n.observeLeader(w, o)...)
				default:
					drained = true
				}
			}
		case <-due.C:
		}
		n.reportLeader(append(events, w.flush(time.Now())...))
		if at, ok := w.lostDue(); ok {
			due.Reset(time.Until(at))
		}
	}
}

func (n *Node) observeLeader(w *leaderWatch, o raft.Observation) []leaderEvent {
	switch d := o.Data.(type) {
	case raft.RaftState:
		w.stateChanged(d, time.Duration(n.leaders.candidateAge.Load()))
	case raft.RequestVoteRequest:
		w.voted(d)
	case raft.LeaderObservation:
		return w.leaderSeen(string(d.LeaderID), n.raft.CurrentTerm(), time.Now())
	}
	return nil
}

func (n *Node) reportLeader(events []leaderEvent) {
	for _, ev := range events {
		c := ev.change
		n.leaders.mu.Lock()
		n.leaders.last, n.leaders.ok = c, true
		n.leaders.mu.Unlock()
		if ev.newLeader {
			n.leaderChanges.Add(1)
		}
		lvl := slog.LevelInfo
		if n.closing.Load() {
			lvl = slog.LevelDebug // this node's own shutdown, not news
		}
		args := []any{"from", orNone(c.From), "to", orNone(c.To), "term", c.Term, "reason", c.Reason}
		if ev.after > 0 {
			args = append(args, "without_leader", ev.after.Round(time.Millisecond))
		}
		n.log.Log(context.Background(), lvl, ev.msg, args...)
	}
}

func orNone(id string) string {
	if id == "" {
		return "none"
	}
	return id
}
