package chaos

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// Status is the live view of a run, handed to Options.Live about once a
// second: what a game-day operator watches.
type Status struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Ops     int           `json:"ops"`
	// Availability is the share of data-plane calls on the hot keys that
	// succeeded since the run began, not counting refusals the run made
	// expected (Refusals); Recent is the same over the last interval (1
	// when there were none).
	Availability       float64 `json:"availability"`
	RecentAvailability float64 `json:"recent_availability"`
	// P99 is the data-plane latency over the last interval.
	P99 time.Duration `json:"p99_ns"`
	// Refusals counts the calls refused by the key-state rules in a way
	// the run itself made expected, by reason (ReasonDisabled, ...),
	// since the run began. They are not failures.
	Refusals map[string]int `json:"refusals"`
	// Errors counts failed calls by error name since the run began
	// (expected refusals are in Refusals, not here).
	Errors map[string]int `json:"errors"`
	// Faults are the faults in force now.
	Faults []string `json:"faults"`
}

// availabilityErrors are the errors that mean "the service did not answer"
// rather than "the service answered no": the failures that are outages.
// Every failure that is not an expected refusal counts against
// availability; these also open a control-plane outage window.
var availabilityErrors = map[string]bool{
	"Unavailable": true, "KMSUnavailableException": true, "DeadlineExceeded": true,
	"DependencyTimeoutException": true, "KMSInternalException": true, "Internal": true,
	"Canceled": true, "RequestCanceledException": true, "Unknown": true, "Pending": true,
	"ResourceExhausted": true, "Aborted": true,
}

// isOutage reports whether op failed for lack of service.
func isOutage(op *history.Op) bool {
	if op.Outcome == history.Ok {
		return false
	}
	return op.Outcome == history.Unknown || availabilityErrors[op.Output.Error]
}

// live aggregates completed ops for the live view.
type live struct {
	mu       sync.Mutex
	start    time.Time
	hot      map[string]bool
	rules    *refusals
	ops      int
	dpTotal  int // hot-key data-plane calls, expected refusals excluded
	dpOK     int
	recentN  int
	recentOK int
	recentL  []time.Duration
	refused  map[string]int
	errors   map[string]int
	faults   []string
	hook     func(history.Op) // the game day's detector; nil when unset
}

// setHook makes every completed op go to f too (nil removes it).
func (l *live) setHook(f func(history.Op)) {
	l.mu.Lock()
	l.hook = f
	l.mu.Unlock()
}

func newLive(hot []string) *live {
	l := &live{start: time.Now(), hot: map[string]bool{}, rules: newRefusals(),
		refused: map[string]int{}, errors: map[string]int{}}
	for _, k := range hot {
		l.hot[k] = true
	}
	return l
}

// invoked sees every call as it starts: a write in flight may already
// explain a refusal (refusals).
func (l *live) invoked(op history.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rules.invoked(&op)
}

func (l *live) observe(op history.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hook != nil {
		l.hook(op)
	}
	l.ops++
	reason := l.rules.completed(&op)
	switch {
	case reason != "":
		l.refused[reason]++
	case op.Outcome != history.Ok:
		l.errors[op.Output.Error]++
	}
	if !op.Kind.IsDataPlane() || !l.hot[op.KeyID] || reason != "" {
		return
	}
	l.dpTotal++
	l.recentN++
	if op.Outcome == history.Ok {
		l.dpOK++
		l.recentOK++
	}
	l.recentL = append(l.recentL, op.Complete-op.Invoke)
}

func (l *live) setFaults(f []string) {
	l.mu.Lock()
	l.faults = slices.Clone(f)
	l.mu.Unlock()
}

// snapshot returns the status and starts a new interval.
func (l *live) snapshot() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{Elapsed: time.Since(l.start), Ops: l.ops, Availability: ratio(l.dpOK, l.dpTotal),
		RecentAvailability: ratio(l.recentOK, l.recentN), P99: percentile(l.recentL, 0.99),
		Refusals: maps.Clone(l.refused), Errors: maps.Clone(l.errors), Faults: slices.Clone(l.faults)}
	l.recentN, l.recentOK, l.recentL = 0, 0, l.recentL[:0]
	return s
}

func ratio(ok, total int) float64 {
	if total == 0 {
		return 1
	}
	return float64(ok) / float64(total)
}

// percentile returns the q-quantile of ds (nearest rank; 0 when empty).
// It sorts ds in place.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds)) + 0.5)
	i = min(max(i-1, 0), len(ds)-1)
	return ds[i]
}

// RefusedTotal is the number of expected refusals (all reasons).
func (s Status) RefusedTotal() int {
	n := 0
	for _, c := range s.Refusals {
		n += c
	}
	return n
}

// String is the live view as one line, for a log:
// "t+12s ops 580 avail 100.000% (last 100.0%) p99 3ms faults [kill-leader(node-1)] refused by the rules (expected) 7 failed map[Unavailable:2]".
func (s Status) String() string {
	return fmt.Sprintf("t+%v ops %d avail %.3f%% (last %.1f%%) p99 %v faults %v refused by the rules (expected) %d failed %v",
		s.Elapsed.Round(time.Second), s.Ops, 100*s.Availability, 100*s.RecentAvailability,
		s.P99.Round(time.Millisecond), s.Faults, s.RefusedTotal(), s.Errors)
}
