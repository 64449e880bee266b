package transport

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Metrics holds the request metrics of the gRPC server. Build it with
// NewMetrics over the registry the node exposes; pass it to NewServer with
// WithMetrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// byMethod pre-resolves the children of every KeyManagement method so the
	// hot path does no label hashing for successes. Read-only after
	// NewMetrics, so no lock.
	byMethod map[string]methodMetrics
}

type methodMetrics struct {
	name     string
	ok       prometheus.Counter
	duration prometheus.Observer
}

// durationBuckets run from 50 us (a cached symmetric Encrypt) to 5 s (a
// forwarded write waiting out a leader election), 16 buckets of x2.15.
var durationBuckets = prometheus.ExponentialBucketsRange(50e-6, 5, 16)

// NewMetrics registers meridian_requests_total{operation,outcome} and
// meridian_request_duration_seconds{operation} with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errNilRegisterer
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_requests_total",
			Help: "gRPC requests served, by operation and outcome (\"ok\" or the exception name).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_request_duration_seconds",
			Help:    "Time to serve a gRPC request, by operation, whatever its outcome.",
			Buckets: durationBuckets,
		}, []string{"operation"}),
		byMethod: make(map[string]methodMetrics),
	}
	if err := registerAll(reg, m.requests, m.duration); err != nil {
		return nil, err
	}
	for _, md := range apiv1.KeyManagement_ServiceDesc.Methods {
		full := kmPrefix + md.MethodName
		m.byMethod[full] = methodMetrics{
			name:     md.MethodName,
			ok:       m.requests.WithLabelValues(md.MethodName, "ok"),
			duration: m.duration.WithLabelValues(md.MethodName),
		}
	}
	return m, nil
}

func (m *Metrics) observe(fullMethod, outcome string, elapsed time.Duration) {
	if mm, ok := m.byMethod[fullMethod]; ok {
		mm.duration.Observe(elapsed.Seconds())
		if outcome == "ok" {
			mm.ok.Inc()
		} else {
			m.requests.WithLabelValues(mm.name, outcome).Inc()
		}
		return
	}
	op := operationName(fullMethod)
	m.duration.WithLabelValues(op).Observe(elapsed.Seconds())
	m.requests.WithLabelValues(op, outcome).Inc()
}

// registerAll registers cs, undoing its own registrations if one fails so a
// retry with a fixed registry starts clean.
func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("register transport metrics: %w", err)
		}
	}
	return nil
}

// RegisterNodeInfo registers meridian_node_info{node_id,region}, always 1, so
// dashboards can join any node metric to the node's region.
func RegisterNodeInfo(reg prometheus.Registerer, nodeID, region string) error {
	if reg == nil {
		return errNilRegisterer
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "meridian_node_info",
		Help:        "Constant 1, labelled with this node's id and region.",
		ConstLabels: prometheus.Labels{"node_id": nodeID, "region": region},
	})
	g.Set(1)
	return registerAll(reg, g)
}

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
}

// NewRaftCollector returns a collector exposing src at scrape time:
// meridian_raft_state{state} (1 for the current state, 0 for the others),
// meridian_raft_term, meridian_raft_commit_index, meridian_raft_applied_index
// and meridian_raft_last_contact_seconds (absent until the node has heard
// from a leader). Register it with the node's registry.
func NewRaftCollector(src RaftStats) prometheus.Collector {
	return &raftCollector{
		src:         src,
		state:       prometheus.NewDesc("meridian_raft_state", "1 for this node's current Raft state, 0 for the others.", []string{"state"}, nil),
		term:        prometheus.NewDesc("meridian_raft_term", "Current Raft term.", nil, nil),
		commit:      prometheus.NewDesc("meridian_raft_commit_index", "Highest Raft log index known committed.", nil, nil),
		applied:     prometheus.NewDesc("meridian_raft_applied_index", "Highest Raft log index applied to this node's FSM.", nil, nil),
		lastContact: prometheus.NewDesc("meridian_raft_last_contact_seconds", "Seconds since this node last heard from the leader (0 on the leader).", nil, nil),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.lastContact} {
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
}
