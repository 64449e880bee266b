package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Step is one fault of a schedule: injected At after the run starts and
// healed For later. For == 0 heals at the end of the run.
type Step struct {
	At    time.Duration
	For   time.Duration
	Fault Fault
}

// Schedule is a run's faults in order of injection. Steps may overlap; the
// runner heals each one For after its injection and heals what is left
// at the end.
type Schedule []Step

// Needs is every harness operation the schedule uses.
func (s Schedule) Needs() Capability {
	var c Capability
	for _, st := range s {
		c |= st.Fault.Needs()
	}
	return c
}

// String lists the steps, one per line: "+1.5s for 2s: kill-leader".
func (s Schedule) String() string {
	var b strings.Builder
	for _, st := range s {
		fmt.Fprintf(&b, "+%v for %v: %s\n", st.At, st.For, st.Fault.Name())
	}
	return b.String()
}

// Topology is what a schedule generator may know of the cluster: its
// nodes (ids and regions) and the harness's capabilities.
type Topology struct {
	Nodes []NodeInfo
	Caps  Capability
}

// Regions returns the topology's regions.
func (t Topology) Regions() []string { return Regions(t.Nodes) }

// gen makes one random fault from the topology.
type gen struct {
	needs Capability
	make  func(r *rand.Rand, t Topology) Fault
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func ids(t Topology) []string {
	var out []string
	for _, n := range t.Nodes {
		out = append(out, n.ID)
	}
	return out
}

// generators are the faults RandomSchedule draws from. Each may pick its
// target now (a node or region by id) or at injection (the leader).
var generators = []gen{
	{CapKill, func(r *rand.Rand, t Topology) Fault { return KillLeader() }},
	{CapKill, func(r *rand.Rand, t Topology) Fault { return &KillNode{ID: pick(r, ids(t))} }},
	{CapKill, func(r *rand.Rand, t Topology) Fault { return &KillRegion{Region: pick(r, t.Regions())} }},
	{CapFreeze, func(r *rand.Rand, t Topology) Fault { return &FreezeNode{} }},
	{CapFreeze, func(r *rand.Rand, t Topology) Fault { return &FreezeNode{ID: pick(r, ids(t))} }},
	{CapPartition, func(r *rand.Rand, t Topology) Fault {
		return &PartitionRegion{Region: pick(r, t.Regions()), OneWay: r.IntN(2) == 0}
	}},
	{CapPartition, func(r *rand.Rand, t Topology) Fault { return &PartitionRegion{} }},
	{CapLatency, func(r *rand.Rand, t Topology) Fault {
		rs := t.Regions()
		a := pick(r, rs)
		b := pick(r, rs)
		return &AddLatency{A: a, B: b, OneWay: time.Duration(10+r.IntN(40)) * time.Millisecond,
			Jitter: time.Duration(r.IntN(10)) * time.Millisecond}
	}},
	{CapFailHSM, func(r *rand.Rand, t Topology) Fault { return &FailHSM{ID: pick(r, ids(t))} }},
	{CapKill | CapWipe, func(r *rand.Rand, t Topology) Fault { return &WipeNode{ID: pick(r, ids(t))} }},
	{CapKill, func(r *rand.Rand, t Topology) Fault { return &RestartAll{} }},
}

// RandomSchedule draws a schedule for a run of duration from seed: the
// same seed, duration and topology give the same schedule. Faults come one
// at a time (a fault, its heal, a quiet gap), each held 10-25% of the run
// (at least 500 ms), so every fault is one any correct cluster of three
// or more regions survives without losing an acknowledged write; latency
// may additionally overlay the next fault. The first 15% and the last 20%
// of the run are quiet, so the workload starts clean and the cluster
// converges before the checks.
func RandomSchedule(seed int64, duration time.Duration, topo Topology) (Schedule, error) {
	if duration <= 0 {
		return nil, fmt.Errorf("%w: random schedule: duration %v must be positive", ErrBadOptions, duration)
	}
	if len(topo.Nodes) == 0 {
		return nil, fmt.Errorf("%w: random schedule: no nodes", ErrBadOptions)
	}
	var usable []gen
	for _, g := range generators {
		if topo.Caps.Has(g.needs) {
			usable = append(usable, g)
		}
	}
	if len(usable) == 0 {
		return nil, fmt.Errorf("%w: random schedule: harness can do no fault (capabilities %v)", ErrUnsupported, topo.Caps)
	}
	// Sorted copies: the caller's node order must not change the draw.
	topo.Nodes = slices.Clone(topo.Nodes)
	slices.SortFunc(topo.Nodes, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	r := rand.New(rand.NewPCG(uint64(seed), 0x6d6572696469616e)) // "meridian"
	minHold := max(500*time.Millisecond, duration/10)
	at, end := duration*15/100, duration*80/100
	var s Schedule
	for at+minHold <= end {
		hold := minHold + time.Duration(r.Int64N(int64(duration*15/100)+1))
		hold = min(hold, end-at)
		g := pick(r, usable)
		f := g.make(r, topo)
		s = append(s, Step{At: at, For: hold, Fault: f})
		if _, isLatency := f.(*AddLatency); isLatency && r.IntN(2) == 0 {
			at += hold / 3 // overlay: the next fault strikes while latency holds
			continue
		}
		at += hold + minHold/2 + time.Duration(r.Int64N(int64(minHold/2)+1))
	}
	return s, nil
}
