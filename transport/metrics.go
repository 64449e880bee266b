package transport

import (
	"fmt"
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
	// waits and waitTime describe consistency-token waits; waitByOutcome
	// pre-resolves the three outcome children.
	waits         *prometheus.CounterVec
	waitTime      prometheus.Histogram
	waitByOutcome [numWaitOutcomes]prometheus.Counter
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

// waitOutcome says how a consistency-token wait ended.
type waitOutcome int

const (
	waitImmediate waitOutcome = iota // the token was already applied
	waitWaited                       // applied during the wait
	waitTimeout                      // not applied within the bound
	numWaitOutcomes
)

var waitOutcomeNames = [numWaitOutcomes]string{"immediate", "waited", "timeout"}

// waitBuckets run from 100 us to 10 s (past the 2 s default bound, for
// operators who raise it), 12 buckets of about x2.2.
var waitBuckets = prometheus.ExponentialBucketsRange(1e-4, 10, 12)

// NewMetrics registers meridian_requests_total{operation,outcome},
// meridian_request_duration_seconds{operation},
// meridian_consistency_waits_total{outcome} and
// meridian_consistency_wait_seconds with reg.
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
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_consistency_waits_total",
			Help: "KeyManagement calls that carried a consistency token, by how the wait for it ended (immediate, waited, timeout).",
		}, []string{"outcome"}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meridian_consistency_wait_seconds",
			Help:    "Time a call carrying a consistency token waited for this node to apply it (0 when already applied).",
			Buckets: waitBuckets,
		}),
		byMethod: make(map[string]methodMetrics),
	}
	if err := registerAll(reg, m.requests, m.duration, m.waits, m.waitTime); err != nil {
		return nil, err
	}
	for i, name := range waitOutcomeNames {
		m.waitByOutcome[i] = m.waits.WithLabelValues(name)
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

// observeConsistencyWait records one token wait; m may be nil.
func (m *Metrics) observeConsistencyWait(o waitOutcome, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.waitByOutcome[o].Inc()
	m.waitTime.Observe(elapsed.Seconds())
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
