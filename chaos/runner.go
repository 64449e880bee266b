package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos/checker"
	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/chaos/workload"
)

// Options configures one chaos run (Run).
type Options struct {
	// Scenario names the game day (ScenarioNames lists them).
	Scenario string
	// Duration is how long the workload runs; faults fall inside it.
	Duration time.Duration
	// Seed makes the schedule (random scenario) and the workload's mix of
	// calls reproducible.
	Seed int64
	// Rate is the workload's target in calls per second (default 50);
	// Clients the number of concurrent callers (default 2 per region).
	Rate    float64
	Clients int
	// Harness is the cluster to break.
	Harness Harness
	// OutDir, if set, receives report.json, report.md, history.json and,
	// when a check fails, the checker's artifacts.
	OutDir string
	// Force runs against a cluster that does not advertise chaos enabled.
	Force bool
	// Live, if set, gets the live view every LiveInterval (default 1 s).
	Live         func(Status)
	LiveInterval time.Duration
	// Settle bounds the wait for the healed cluster to converge before the
	// checks (default 60 s).
	Settle time.Duration
	// Checker tunes the checks (zero value: checker.DefaultOptions()).
	Checker *checker.Options
	// Schedule, if set, replaces the scenario's schedule (tests, replays).
	Schedule Schedule
	// Logf, if set, receives a line per fault injected and healed.
	Logf func(format string, args ...any)
}

func (o *Options) validate() (Scenario, error) {
	sc, err := LookupScenario(o.Scenario)
	if err != nil {
		return sc, err
	}
	switch {
	case o.Harness == nil:
		return sc, fmt.Errorf("%w: no harness", ErrBadOptions)
	case o.Duration < time.Second || o.Duration > 24*time.Hour:
		return sc, fmt.Errorf("%w: duration %v: want 1s..24h", ErrBadOptions, o.Duration)
	case o.Rate < 0 || o.Clients < 0:
		return sc, fmt.Errorf("%w: negative rate or clients", ErrBadOptions)
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.LiveInterval <= 0 {
		o.LiveInterval = time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 60 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return sc, nil
}

// FaultEvent is one injected fault on the run's timeline (offsets from the
// history's start).
type FaultEvent struct {
	Name     string        `json:"name"`
	Injected time.Duration `json:"injected_ns"`
	Healed   time.Duration `json:"healed_ns"`
	Error    string        `json:"error,omitempty"`
}

// Run runs opt.Scenario against opt.Harness: it sets the workload up,
// runs it for opt.Duration while applying the schedule, heals whatever is
// left, waits for the cluster to converge, runs the checker and returns
// the report. The error is non-nil only when the run could not be carried
// out (bad options, refusal, setup failure); a failed check is a report
// whose Passed is false.
func Run(ctx context.Context, opt Options) (*Report, error) {
	sc, err := opt.validate()
	if err != nil {
		return nil, err
	}
	h := opt.Harness
	if err := checkChaosEnabled(ctx, h, opt.Force); err != nil {
		return nil, err
	}
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	sched := opt.Schedule
	if sched == nil {
		if sched, err = sc.Schedule(opt.Seed, opt.Duration, Topology{Nodes: nodes, Caps: h.Capabilities()}); err != nil {
			return nil, err
		}
	}
	if missing := sched.Needs() &^ h.Capabilities(); missing != 0 {
		return nil, fmt.Errorf("scenario %s needs %v, which the %s harness cannot do: %w",
			sc.Name, missing, h.Name(), ErrUnsupported)
	}
	if opt.OutDir != "" {
		if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("create out dir: %w", err)
		}
	}

	rec := history.NewRecorder()
	var lv *live
	var lvMu sync.Mutex // lv is set after Setup; observe may run before
	current := func() *live {
		lvMu.Lock()
		defer lvMu.Unlock()
		return lv
	}
	wcfg := workload.Config{Regions: Regions(nodes), ClientConfig: h.ClientConfig, Clients: opt.Clients,
		Rate: opt.Rate, Duration: opt.Duration, Seed: opt.Seed, Recorder: rec,
		Observe: func(op history.Op) {
			if l := current(); l != nil {
				l.observe(op)
			}
		},
		ObserveInvoke: func(op history.Op) {
			if l := current(); l != nil {
				l.invoked(op)
			}
		}}
	w, err := workload.New(ctx, wcfg)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = w.Setup(sctx)
	cancel()
	if err != nil {
		return nil, err
	}
	lvMu.Lock()
	lv = newLive(w.HotKeys())
	lvMu.Unlock()

	begin := time.Now()
	runStart := rec.Offset(begin)
	stopLive := startLive(opt, lv)
	var gd *GameDay
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(ctx) // bounded by opt.Duration and ctx
	}()
	if sc.DisableKey {
		// Beside the schedule, not before it: a schedule given in
		// opt.Schedule must keep its times while the drill waits.
		wg.Add(1)
		go func() {
			defer wg.Done()
			gd = runGameDay(ctx, opt, w, rec, lv, begin, Regions(nodes)[0])
		}()
	}
	events := runSchedule(ctx, opt, sched, rec, lv, begin)
	wg.Wait()
	workloadEnd := rec.Now()
	probeWritesBack(ctx, opt, w, rec, events, Regions(nodes))
	stopLive()

	// Heal leftovers a cut-short run left behind, then let the cluster settle.
	if h.Capabilities().Has(CapPartition) {
		if err := h.Heal(ctx); err != nil {
			opt.Logf("final heal: %v", err)
		}
	}
	rep := newReport(opt, sc, h, sched, events, gd)
	settled := time.Now()
	pin, err := pinAll(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("connect to the healed cluster: %w", err)
	}
	defer pin.Close()
	cctx, cancel := context.WithTimeout(ctx, opt.Settle)
	err = pin.converge(cctx)
	cancel()
	rep.ConvergedAfterMS = ms(time.Since(settled))
	if err != nil {
		rep.Notes = append(rep.Notes, "the cluster did not converge after healing: "+err.Error())
	}

	hist := rec.History()
	copt := checker.DefaultOptions()
	if opt.Checker != nil {
		copt = *opt.Checker
	}
	if copt.OutDir == "" && opt.OutDir != "" {
		copt.OutDir = filepath.Join(opt.OutDir, "checker")
	}
	verdict, err := checker.Check(ctx, hist, pin, copt)
	if err != nil {
		return nil, fmt.Errorf("check the history: %w", err)
	}
	rep.workloadEnd = workloadEnd
	rep.fill(hist, runStart, w.HotKeys(), verdict)
	if rep.Nodes, err = h.Nodes(ctx); err != nil {
		rep.Notes = append(rep.Notes, "list nodes after the run: "+err.Error())
	}
	if opt.OutDir != "" {
		if err := errors.Join(hist.WriteFile(filepath.Join(opt.OutDir, "history.json")), rep.WriteFiles(opt.OutDir)); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// startLive calls opt.Live every interval until the returned stop.
func startLive(opt Options, lv *live) func() {
	if opt.Live == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(opt.LiveInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				opt.Live(lv.snapshot())
				return
			case <-t.C:
				opt.Live(lv.snapshot())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// runSchedule injects and heals each step at its time and heals every
// step still in force when the run's duration or ctx ends. Steps are
// healed in reverse order of injection when several end together.
func runSchedule(ctx context.Context, opt Options, s Schedule, rec *history.Recorder, lv *live, begin time.Time) []FaultEvent {
	type action struct {
		at   time.Duration
		step int
		heal bool
	}
	var acts []action
	for i, st := range s {
		acts = append(acts, action{at: st.At, step: i})
		end := st.At + st.For
		if st.For <= 0 || end > opt.Duration {
			end = opt.Duration
		}
		acts = append(acts, action{at: end, step: i, heal: true})
	}
	sortActions := func(a, b action) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		if a.heal != b.heal { // heal before injecting at the same instant
			if a.heal {
				return -1
			}
			return 1
		}
		return b.step - a.step
	}
	slices.SortStableFunc(acts, sortActions)
	events := make([]FaultEvent, len(s))
	active := map[int]bool{}
	publish := func() {
		var names []string
		for i := range s {
			if active[i] {
				names = append(names, s[i].Fault.Name())
			}
		}
		lv.setFaults(names)
	}
	// Faults act on the cluster after the run's ctx ends too: a heal
	// must never be skipped because the caller gave up.
	fctx := context.WithoutCancel(ctx)
	for _, a := range acts {
		st := s[a.step]
		if !a.heal {
			if !workload.SleepUntil(ctx, begin.Add(a.at)) {
				break
			}
			injected := rec.Now()
			err := st.Fault.Inject(fctx, opt.Harness)
			events[a.step] = FaultEvent{Name: st.Fault.Name(), Injected: injected}
			if err != nil {
				events[a.step].Error = "inject: " + err.Error()
			}
			active[a.step] = true
			opt.Logf("+%v inject %s: %s", a.at, st.Fault.Name(), okOr(err))
			publish()
			continue
		}
		if !active[a.step] {
			continue
		}
		workload.SleepUntil(ctx, begin.Add(a.at))
		healFault(fctx, opt, st, &events[a.step], rec)
		delete(active, a.step)
		publish()
	}
	// Anything still active (ctx ended early) is healed now.
	for i := len(s) - 1; i >= 0; i-- {
		if active[i] {
			healFault(fctx, opt, s[i], &events[i], rec)
		}
	}
	lv.setFaults(nil)
	var out []FaultEvent
	for i := range events {
		if events[i].Name != "" {
			out = append(out, events[i])
		}
	}
	return out
}

func healFault(ctx context.Context, opt Options, st Step, ev *FaultEvent, rec *history.Recorder) {
	err := st.Fault.Heal(ctx, opt.Harness)
	ev.Healed = rec.Now()
	if err != nil {
		ev.Error = joinMsg(ev.Error, "heal: "+err.Error())
	}
	opt.Logf("heal %s: %s", st.Fault.Name(), okOr(err))
}

// okOr is how a log line says how an act went: "ok", or the error.
func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return "failed: " + err.Error()
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
