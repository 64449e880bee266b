// Package autopilot decides how the leader should change the Raft
// configuration: which gossip-discovered nodes to add as non-voters, which
// non-voters to promote, which voters to demote or remove, and when to hand
// leadership to the preferred region. Decide is a pure function of a
// snapshot of the cluster, so every rule is table-tested; package cluster
// gathers the snapshot and applies the actions.
package autopilot

import (
	"cmp"
	"slices"
	"time"
)

// Suffrage is a server's place in the Raft configuration.
type Suffrage int

// Suffrages.
const (
	None     Suffrage = iota // known by gossip only
	Nonvoter                 // replicates, never votes
	Voter                    // votes, counts toward quorum
)

// Status is a server's gossip state as the leader sees it.
type Status int

// Statuses. Unknown is a server in Raft that gossip has never reported.
const (
	Alive Status = iota
	Suspect
	Dead
	Left
	Unknown
)

// Server is one node as the leader sees it.
type Server struct {
	ID, Region, Zone string
	Suffrage         Suffrage
	Status           Status
	// StatusSince is when Status began; it times the dead-server grace.
	StatusSince time.Time
	// AliveSince is the start of the current alive streak; a non-voter is
	// stable once it has been alive for Config.StabilizationTime.
	AliveSince time.Time
	// Reachable means the server answered the leader's status poll this
	// round, so LastIndex is current.
	Reachable bool
	LastIndex uint64
	// NoVote marks a server that must never be promoted (a read replica).
	NoVote   bool
	IsLeader bool
}

// Config holds the placement and safety knobs.
type Config struct {
	// TargetVoters is the wanted number of voters; an odd number. Fewer
	// are used when fewer servers qualify, always an odd count.
	TargetVoters int
	// MaxLagEntries is how far behind the leader's last index a non-voter
	// may be and still count as caught up.
	MaxLagEntries uint64
	// StabilizationTime is how long a non-voter must stay alive before it
	// is promoted.
	StabilizationTime time.Duration
	// DeadServerGrace is how long a server must be DEAD, LEFT or unknown
	// to gossip before it is removed from Raft.
	DeadServerGrace time.Duration
	// PreferredLeaderRegion, if set, gets leadership back when one of its
	// voters is healthy, caught up and stable.
	PreferredLeaderRegion string
	// TransferHysteresis is how long a leader must have led before it is
	// asked to hand over, so leadership does not flap.
	TransferHysteresis time.Duration
}

// State is the snapshot Decide works on.
type State struct {
	Now             time.Time
	LeaderLastIndex uint64
	// LeaderSince is when the current leader took office (or last tried a
	// transfer): the start of the hysteresis window.
	LeaderSince time.Time
	Servers     []Server
}

// Kind is what an Action does.
type Kind int

// Action kinds.
const (
	AddNonvoter Kind = iota
	Promote
	Demote
	Remove
	TransferLeadership
)

func (k Kind) String() string {
	return [...]string{"add-nonvoter", "promote", "demote", "remove", "transfer-leadership"}[k]
}

// Action is one change for the leader to make, with why.
type Action struct {
	Kind   Kind
	ID     string
	Reason string
}

// Decide returns the changes to make now, in order. It changes at most one
// voter's suffrage downward per call (demotion or removal), and never in
// the same call as a promotion, so every step is judged on a configuration
// raft has already committed.
func Decide(cfg Config, st State) []Action {
	var out []Action
	for _, s := range st.Servers {
		if s.Suffrage == None && s.Status == Alive {
			out = append(out, Action{AddNonvoter, s.ID, "discovered by gossip"})
		}
		if s.Suffrage == Nonvoter && !s.IsLeader && gone(cfg, st.Now, s) {
			out = append(out, Action{Remove, s.ID, "dead past grace period"})
		}
	}
	want := Place(cfg, st)
	promoted := false
	for _, s := range st.Servers {
		if s.Suffrage == Nonvoter && want[s.ID] {
			out = append(out, Action{Promote, s.ID, "caught up and stable; placement wants a voter here"})
			promoted = true
		}
	}
	if promoted {
		return out
	}
	if a, ok := dropOneVoter(cfg, st, want); ok {
		return append(out, a)
	}
	if len(out) > 0 {
		return out
	}
	if a, ok := transfer(cfg, st); ok {
		out = append(out, a)
	}
	return out
}

// gone reports a server dead, left or unknown for at least the grace.
func gone(cfg Config, now time.Time, s Server) bool {
	return (s.Status == Dead || s.Status == Left || s.Status == Unknown) &&
		now.Sub(s.StatusSince) >= cfg.DeadServerGrace
}

// failed reports a server gossip calls dead or left (unknown counts only
// once the grace has passed: a new leader's gossip view may still be
// filling in).
func failed(cfg Config, now time.Time, s Server) bool {
	return s.Status == Dead || s.Status == Left || gone(cfg, now, s)
}

// dropOneVoter picks at most one voter to remove (dead past grace) or
// demote (not wanted by placement), subject to SafeToDrop.
func dropOneVoter(cfg Config, st State, want map[string]bool) (Action, bool) {
	voters := 0
	for _, s := range st.Servers {
		if s.Suffrage == Voter {
			voters++
		}
	}
	spread := regionsOf(usable(cfg, st)) >= 3
	for _, s := range sortedByID(st.Servers) {
		if s.Suffrage != Voter || s.IsLeader || !SafeToDrop(st.Servers, s.ID) {
			continue
		}
		switch {
		case gone(cfg, st.Now, s):
			return Action{Remove, s.ID, "dead past grace period"}, true
		case want[s.ID]:
		case failed(cfg, st.Now, s):
			return Action{Demote, s.ID, "failed voter; replaced or not needed"}, true
		case spread || voters > cfg.TargetVoters:
			return Action{Demote, s.ID, "placement: region over its share or above target voters"}, true
		}
	}
	return Action{}, false
}

// SafeToDrop is the removal safety rule: voter id may leave the voter set
// only if, afterwards, the voters gossip reports alive (or suspect) and
// that answered this round's status poll are still a strict majority of
// the voters, and at least one voter remains. Dropping a dead voter
// therefore passes while the cluster has a live, reachable quorum;
// dropping a live one passes only with such a majority to spare. Gossip
// alone is not enough: a leave or a death takes a gossip round or more to
// reach the leader, and a drop decided on that stale "alive" (a region
// killed node by node while placement was moving) can leave a voter set
// with no quorum, which nothing can repair.
func SafeToDrop(servers []Server, id string) bool {
	voters, healthy := 0, 0
	for _, s := range servers {
		if s.Suffrage != Voter || s.ID == id {
			continue
		}
		voters++
		if (s.Status == Alive || s.Status == Suspect) && s.Reachable {
			healthy++
		}
	}
	return voters >= 1 && 2*healthy > voters
}

// transfer proposes handing leadership to the preferred region.
func transfer(cfg Config, st State) (Action, bool) {
	if cfg.PreferredLeaderRegion == "" || st.Now.Sub(st.LeaderSince) < cfg.TransferHysteresis {
		return Action{}, false
	}
	var best *Server
	for i, s := range st.Servers {
		if s.IsLeader && s.Region == cfg.PreferredLeaderRegion {
			return Action{}, false
		}
		if s.Suffrage != Voter || s.Region != cfg.PreferredLeaderRegion || !ready(cfg, st, s) {
			continue
		}
		if best == nil || s.LastIndex > best.LastIndex || (s.LastIndex == best.LastIndex && s.ID < best.ID) {
			best = &st.Servers[i]
		}
	}
	if best == nil {
		return Action{}, false
	}
	return Action{TransferLeadership, best.ID, "preferred leader region " + cfg.PreferredLeaderRegion + " is healthy"}, true
}

// ready reports an alive, reachable, caught-up and stable server.
func ready(cfg Config, st State, s Server) bool {
	return s.Status == Alive && s.Reachable &&
		s.LastIndex+cfg.MaxLagEntries >= st.LeaderLastIndex &&
		!s.AliveSince.IsZero() && st.Now.Sub(s.AliveSince) >= cfg.StabilizationTime
}

// usable lists the servers placement may choose as voters: live voters
// (keeping them avoids churn) and ready non-voters that may vote.
func usable(cfg Config, st State) []Server {
	var out []Server
	for _, s := range st.Servers {
		switch {
		case s.Suffrage == Voter && (s.Status == Alive || s.Status == Suspect):
			out = append(out, s)
		case s.Suffrage == Nonvoter && !s.NoVote && ready(cfg, st, s):
			out = append(out, s)
		}
	}
	return out
}

func regionsOf(ss []Server) int {
	seen := map[string]bool{}
	for _, s := range ss {
		seen[s.Region] = true
	}
	return len(seen)
}

func sortedByID(ss []Server) []Server {
	out := slices.Clone(ss)
	slices.SortFunc(out, func(a, b Server) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
