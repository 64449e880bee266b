package transport

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RaftStatus is a point-in-time view of this node's Raft state.
type RaftStatus struct {
	// State is the raft.RaftState name: "Leader", "Follower", "Candidate"
	// or "Shutdown" (case does not matter).
	State        string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// LastContact is the time since this node last heard from the leader;
	// 0 on the leader and negative when it never has.
	LastContact time.Duration
	// ApplyLag is how many committed entries this node's fsm has yet to
	// apply (commit index minus fsm applied index): what a read here is
	// behind by, and what a consistency token may have to wait out.
	ApplyLag uint64
	// LeaderChanges counts the leader changes this node has observed since
	// it started (a counter: it only grows).
	LeaderChanges uint64
}

// RaftStats is what the Raft collector reads at each scrape. The cluster
// package's node satisfies it through a small adapter in the wiring.
type RaftStats interface {
	Stats() RaftStatus
}

// RaftStatsFunc adapts a function to RaftStats.
type RaftStatsFunc func() RaftStatus

// Stats calls f.
func (f RaftStatsFunc) Stats() RaftStatus { return f() }

var raftStates = []string{"leader", "follower", "candidate", "shutdown"}

type raftCollector struct {
	src                                       RaftStats
	state, term, commit, applied, lastContact *prometheus.Desc
	applyLag, leaderChanges                   *prometheus.Desc
}

// NewRaftCollector returns a collector exposing src at scrape time:
// meridian_raft_state{state} (1 for the current state, 0 for the others),
// meridian_raft_term, meridian_raft_commit_index, meridian_raft_applied_index,
// meridian_raft_last_contact_seconds (absent until the node has heard
// from a leader), meridian_apply_lag_entries and meridian_leader_changes_total.
// Register it with the node's registry.
func NewRaftCollector(src RaftStats) prometheus.Collector {
	return &raftCollector{
		src:           src,
		state:         prometheus.NewDesc("meridian_raft_state", "1 for this node's current Raft state, 0 for the others.", []string{"state"}, nil),
		term:          prometheus.NewDesc("meridian_raft_term", "Current Raft term.", nil, nil),
		commit:        prometheus.NewDesc("meridian_raft_commit_index", "Highest Raft log index known committed.", nil, nil),
		applied:       prometheus.NewDesc("meridian_raft_applied_index", "Highest Raft log index applied to this node's FSM.", nil, nil),
		lastContact:   prometheus.NewDesc("meridian_raft_last_contact_seconds", "Seconds since this node last heard from the leader (0 on the leader).", nil, nil),
		applyLag:      prometheus.NewDesc("meridian_apply_lag_entries", "Committed Raft entries this node's FSM has not applied yet.", nil, nil),
		leaderChanges: prometheus.NewDesc("meridian_leader_changes_total", "Leader changes this node has observed since it started.", nil, nil),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.lastContact, c.applyLag, c.leaderChanges} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	current := strings.ToLower(st.State)
	for _, s := range raftStates {
		v := 0.0
		if s == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.AppliedIndex))
	if st.LastContact >= 0 {
		ch <- prometheus.MustNewConstMetric(c.lastContact, prometheus.GaugeValue, st.LastContact.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.applyLag, prometheus.GaugeValue, float64(st.ApplyLag))
	ch <- prometheus.MustNewConstMetric(c.leaderChanges, prometheus.CounterValue, float64(st.LeaderChanges))
}

// membersScrapeTimeout bounds the Membership call of one scrape, so a
// wedged view leaves the members series out instead of hanging /metrics.
const membersScrapeTimeout = time.Second

type membersCollector struct {
	src  Membership
	desc *prometheus.Desc
}

// NewMembersCollector returns a collector exposing
// meridian_members{region,status}: how many members this node sees per
// region and gossip status, read from src at scrape time. Every region
// seen gets all four statuses (0 where none), so "dead > 0" alerts and
// ratios need no absent() guards. If src fails, the series are left out of
// that scrape.
func NewMembersCollector(src Membership) prometheus.Collector {
	return &membersCollector{
		src:  src,
		desc: prometheus.NewDesc("meridian_members", "Cluster members this node sees, by region and gossip status.", []string{"region", "status"}, nil),
	}
}

func (c *membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *membersCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), membersScrapeTimeout)
	defer cancel()
	v, err := c.src.Members(ctx)
	if err != nil {
		return
	}
	counts := map[string]map[MemberStatus]int{}
	for _, m := range v.Members {
		if counts[m.Region] == nil {
			counts[m.Region] = map[MemberStatus]int{}
		}
		st := m.Status
		if st == "" {
			st = "UNKNOWN"
		}
		counts[m.Region][st]++
	}
	regions := make([]string, 0, len(counts))
	for r := range counts {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, r := range regions {
		for _, st := range memberStatuses {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[r][st]), r, statusLabel(st))
			delete(counts[r], st)
		}
		// Statuses outside the known four (a newer cluster package) still
		// count, under their own name.
		for st, n := range counts[r] {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), r, statusLabel(st))
		}
	}
}

// statusLabel is the metric label of a status: lower case, as Prometheus
// label values usually are ("alive", "dead").
func statusLabel(st MemberStatus) string { return strings.ToLower(string(st)) }
