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
	// succeeded since the run began; Recent is the same over the last
	// interval (1 when there were none).
	Availability       float64 `json:"availability"`
	RecentAvailability float64 `json:"recent_availability"`
	// P99 is the data-plane latency over the last interval.
	P99 time.Duration `json:"p99_ns"`
	// Errors counts failed calls by error name since the run began.
	Errors map[string]int `json:"errors"`
	// Faults are the faults in force now.
	Faults []string `json:"faults"`
}

// availabilityErrors are the errors that mean "the service did not answer"
// rather than "the service answered no": the ones that count against
// availability on the control plane.
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
	ops      int
	dpTotal  int
	dpOK     int
	recentN  int
	recentOK int
	recentL  []time.Duration
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
	l := &live{start: time.Now(), hot: map[string]bool{}, errors: map[string]int{}}
	for _, k := range hot {
		l.hot[k] = true
	}
	return l
}

func (l *live) observe(op history.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hook != nil {
		l.hook(op)
	}
	l.ops++
	if op.Outcome != history.Ok {
		l.errors[op.Output.Error]++
	}
	if !op.Kind.IsDataPlane() || !l.hot[op.KeyID] {
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
		Errors: maps.Clone(l.errors), Faults: slices.Clone(l.faults)}
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

// String is the live view as one line, for a terminal:
// "t+12s ops 580 avail 100.000% (last 100.0%) p99 3ms faults [kill-leader(node-1)] errors map[...]".
func (s Status) String() string {
	return fmt.Sprintf("t+%v ops %d avail %.3f%% (last %.1f%%) p99 %v faults %v errors %v",
		s.Elapsed.Round(time.Second), s.Ops, 100*s.Availability, 100*s.RecentAvailability,
		s.P99.Round(time.Millisecond), s.Faults, s.Errors)
}
