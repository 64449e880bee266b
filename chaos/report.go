package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/meridiankms/meridian/chaos/checker"
	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// Report is a run's outcome: what clients saw, how long the control plane
// was gone, how fast writes came back after each fault, what was lost,
// and the checker's verdict. Times are milliseconds; offsets are from the
// history's start.
type Report struct {
	Scenario  string       `json:"scenario"`
	Harness   string       `json:"harness"`
	Seed      int64        `json:"seed"`
	Duration  string       `json:"duration"`
	Rate      float64      `json:"rate"`
	Started   time.Time    `json:"started"`
	Nodes     []NodeInfo   `json:"nodes"`
	Faults    []FaultEvent `json:"faults"`
	Schedule  []string     `json:"schedule"`
	TotalOps  int          `json:"total_ops"`
	DataPlane PlaneStats   `json:"data_plane"`
	Control   PlaneStats   `json:"control_plane"`
	// ControlOutages are the windows in which control-plane writes failed
	// for lack of service (from the first such failure to the next
	// acknowledged write).
	ControlOutages []Window `json:"control_outages"`
	// Failover is, per fault, the time from injection to the earliest
	// completion of an acknowledged write invoked after it.
	Failover    []Failover `json:"failover"`
	FailoverP50 float64    `json:"failover_p50_ms"`
	FailoverP99 float64    `json:"failover_p99_ms"`
	// LostWrites counts acknowledged writes missing after healing:
	// CreateKeys absent on a node plus ciphertexts that no longer decrypt.
	LostWrites int `json:"lost_writes"`
	// Refusals counts the calls refused by the key-state rules in a way
	// the run itself made expected, by reason (ReasonDisabled, ...): the
	// workload disables keys and schedules their deletion, then uses them.
	Refusals map[string]int `json:"refusals_by_rule"`
	// Errors counts the failed calls by error name: every call that did
	// not succeed and is not in Refusals.
	Errors map[string]int `json:"errors"`
	// NotFoundAfterCreate counts the NotFoundException failures on keys
	// whose CreateKey had been acknowledged before the call was invoked:
	// the serving node had not applied the create. The workload carries
	// each create's consistency token to every caller, so a node behind
	// it should have answered Unavailable instead; these are failures.
	NotFoundAfterCreate int              `json:"not_found_after_create"`
	GameDay             *GameDay         `json:"game_day,omitempty"`
	ConvergedAfterMS    float64          `json:"converged_after_ms"`
	Verdict             *checker.Verdict `json:"verdict"`
	// Passed: every check passed and no fault failed to inject or heal.
	Passed bool     `json:"passed"`
	Notes  []string `json:"notes,omitempty"`

	// workloadEnd is when the workload stopped issuing calls (history
	// offset); calls invoked later are the runner's probes.
	workloadEnd time.Duration
}

// PlaneStats summarises one plane's calls. For the data plane only calls
// on the workload's hot keys count (calls on keys the control plane churns
// are refused by design when those keys are disabled); for the control
// plane, the writes. Calls = OK + Refused + Failed.
type PlaneStats struct {
	Calls int `json:"calls"`
	OK    int `json:"ok"`
	// Refused are the calls refused by the key-state rules in a way the
	// run made expected (Report.Refusals has the reasons): the service
	// answered, and answered right. They count neither way.
	Refused int `json:"refused_by_rules"`
	// Failed are the other unsuccessful calls.
	Failed int `json:"failed"`
	// Outages are the failures for lack of service (Unavailable, timeouts,
	// unknown outcomes): a subset of Failed.
	Outages int `json:"outages"`
	// Availability is OK / (Calls - Refused): 1 when nothing counted.
	Availability float64 `json:"availability"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
}

// Window is a span of the run.
type Window struct {
	StartMS    float64 `json:"start_ms"`
	EndMS      float64 `json:"end_ms"`
	DurationMS float64 `json:"duration_ms"`
}

// Failover is how long after one fault writes were back.
type Failover struct {
	Fault string `json:"fault"`
	// FirstWriteMS is -1 when no write invoked after the fault succeeded.
	FirstWriteMS float64 `json:"first_write_ms"`
	// Probed: that write was the runner's probe after the workload had
	// ended (the run was too short for the workload to see writes back).
	Probed bool `json:"probed,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newReport(opt Options, sc Scenario, h Harness, s Schedule, events []FaultEvent, gd *GameDay) *Report {
	r := &Report{Scenario: sc.Name, Harness: h.Name(), Seed: opt.Seed, Duration: opt.Duration.String(),
		Rate: opt.Rate, Faults: events, GameDay: gd, Refusals: map[string]int{}, Errors: map[string]int{}}
	for _, st := range s {
		r.Schedule = append(r.Schedule, fmt.Sprintf("+%v for %v: %s", st.At, st.For, st.Fault.Name()))
	}
	for _, e := range events {
		if e.Error != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("fault %s: %s", e.Name, e.Error))
		}
	}
	if gd != nil && gd.Error != "" {
		r.Notes = append(r.Notes, "game day: "+gd.Error)
	}
	return r
}

// fill computes the figures from the history and takes the verdict.
func (r *Report) fill(h *history.History, runStart time.Duration, hot []string, v *checker.Verdict) {
	r.Started = h.Start
	r.Verdict = v
	isHot := map[string]bool{}
	for _, k := range hot {
		isHot[k] = true
	}
	if r.Refusals == nil {
		r.Refusals = map[string]int{}
	}
	if r.Errors == nil {
		r.Errors = map[string]int{}
	}
	reasons := classifyRefusals(h)
	created := map[string]time.Duration{} // key -> acknowledgement of its CreateKey
	for i := range h.Ops {
		if op := &h.Ops[i]; op.Kind == history.CreateKey && op.Outcome == history.Ok && op.Key() != "" {
			created[op.Key()] = op.Complete
		}
	}
	var dpLat, cpLat []time.Duration
	var writes []*history.Op
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Invoke < runStart { // the setup's creates
			continue
		}
		r.TotalOps++
		switch {
		case reasons[i] != "":
			r.Refusals[reasons[i]]++
		case op.Outcome != history.Ok:
			r.Errors[op.Output.Error]++
			// An alias update's NotFound may be the alias's, not the key's.
			if at, ok := created[op.Key()]; ok && op.Output.Error == string(client.NotFound) && op.Invoke > at &&
				op.Kind != history.UpdateAlias && op.Kind != history.DeleteAlias {
				r.NotFoundAfterCreate++
			}
		}
		switch {
		case op.Kind.IsDataPlane() && isHot[op.KeyID]:
			add(&r.DataPlane, op, reasons[i])
			if r.GameDay != nil && op.KeyID == r.GameDay.Key && op.Output.Error == "DisabledException" {
				r.GameDay.RefusedCalls++
			}
			dpLat = append(dpLat, op.Complete-op.Invoke)
		case op.Kind.IsWrite():
			add(&r.Control, op, reasons[i])
			cpLat = append(cpLat, op.Complete-op.Invoke)
			writes = append(writes, op)
		}
	}
	finish(&r.DataPlane, dpLat)
	finish(&r.Control, cpLat)
	r.ControlOutages = outages(writes)
	r.Failover = failovers(r.Faults, writes, r.workloadEnd)
	var fos []time.Duration
	for _, f := range r.Failover {
		if f.FirstWriteMS >= 0 {
			fos = append(fos, time.Duration(f.FirstWriteMS*float64(time.Millisecond)))
		}
	}
	r.FailoverP50, r.FailoverP99 = ms(percentile(slices.Clone(fos), 0.5)), ms(percentile(fos, 0.99))
	if v != nil {
		r.LostWrites = v.LostWrites.Violations + v.Ciphertexts.Violations
	}
	r.Passed = v != nil && v.Passed() && len(r.Notes) == 0
}

// add counts op; reason is its expected-refusal reason ("" if none).
func add(p *PlaneStats, op *history.Op, reason string) {
	p.Calls++
	switch {
	case op.Outcome == history.Ok:
		p.OK++
	case reason != "":
		p.Refused++
	default:
		p.Failed++
		if isOutage(op) {
			p.Outages++
		}
	}
}

func finish(p *PlaneStats, lat []time.Duration) {
	p.Availability = ratio(p.OK, p.Calls-p.Refused)
	p.P50MS, p.P99MS = ms(percentile(slices.Clone(lat), 0.5)), ms(percentile(lat, 0.99))
}

// outages finds the control-plane outage windows: each starts at the
// invocation of a write that failed for lack of service and ends at the
// completion of the next acknowledged write invoked after it (or the last
// write's completion if none was).
func outages(writes []*history.Op) []Window {
	var out []Window
	for i := 0; i < len(writes); i++ {
		if !isOutage(writes[i]) {
			continue
		}
		start := writes[i].Invoke
		end := time.Duration(-1)
		j := i + 1
		for ; j < len(writes); j++ {
			if writes[j].Outcome == history.Ok && writes[j].Invoke >= start {
				end = writes[j].Complete
				break
			}
		}
		if end < 0 {
			end = writes[len(writes)-1].Complete
		}
		if n := len(out); n > 0 && time.Duration(out[n-1].EndMS*float64(time.Millisecond)) >= start {
			out[n-1].EndMS = max(out[n-1].EndMS, ms(end))
			out[n-1].DurationMS = out[n-1].EndMS - out[n-1].StartMS
		} else {
			out = append(out, Window{StartMS: ms(start), EndMS: ms(end), DurationMS: ms(end - start)})
		}
		for i+1 < len(writes) && writes[i+1].Invoke <= end {
			i++
		}
	}
	return out
}

// failovers times, per fault, the earliest completion of an acknowledged
// write invoked at or after its injection: when writes were back. (Not the
// first write invoked: that one may be stuck on the dead leader while later
// ones already succeed elsewhere.)
// workloadEnd (0: unknown) marks the runner's probes, invoked after it.
func failovers(events []FaultEvent, writes []*history.Op, workloadEnd time.Duration) []Failover {
	var out []Failover
	for _, e := range events {
		f := Failover{Fault: e.Name, FirstWriteMS: -1}
		for _, w := range writes {
			if w.Outcome == history.Ok && w.Invoke >= e.Injected && (f.FirstWriteMS < 0 || ms(w.Complete-e.Injected) < f.FirstWriteMS) {
				f.FirstWriteMS = ms(w.Complete - e.Injected)
				f.Probed = workloadEnd > 0 && w.Invoke >= workloadEnd
			}
		}
		out = append(out, f)
	}
	return out
}

// WriteFiles writes report.json and report.md into dir.
func (r *Report) WriteFiles(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
