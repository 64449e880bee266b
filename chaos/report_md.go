package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Markdown renders the report for humans: the verdict first, then the
// figures, then the timeline.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# Chaos run: %s — %s\n\n", r.Scenario, verdict)
	fmt.Fprintf(&b, "Harness %s, seed %d, duration %s, target rate %.0f calls/s, started %s.\n\n",
		r.Harness, r.Seed, r.Duration, r.Rate, r.Started.UTC().Format("2006-01-02 15:04:05 MST"))

	b.WriteString("| figure | value |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| data-plane availability (hot keys) | %s |\n", planeLine(r.DataPlane))
	fmt.Fprintf(&b, "| data-plane latency p50 / p99 | %.1f ms / %.1f ms |\n", r.DataPlane.P50MS, r.DataPlane.P99MS)
	fmt.Fprintf(&b, "| control-plane write availability | %s |\n", planeLine(r.Control))
	fmt.Fprintf(&b, "| control-plane unavailability | %s |\n", windows(r.ControlOutages))
	fmt.Fprintf(&b, "| failover (fault -> writes back) p50 / p99 | %.0f ms / %.0f ms |\n", r.FailoverP50, r.FailoverP99)
	fmt.Fprintf(&b, "| requests lost (acked, then missing) | %d |\n", r.LostWrites)
	fmt.Fprintf(&b, "| converged after healing in | %.0f ms |\n", r.ConvergedAfterMS)
	fmt.Fprintf(&b, "| calls | %d |\n\n", r.TotalOps)

	if gd := r.GameDay; gd != nil {
		b.WriteString("## Accidental key disable\n\n")
		fmt.Fprintf(&b, "Key %s disabled at +%.0f ms. Detected after %.0f ms, re-enabled %.0f ms later, "+
			"first success %.0f ms after that: callers refused for %.0f ms (%d calls).\n",
			gd.Key, gd.DisabledAtMS, gd.DetectedAfterMS, gd.ReenabledAfterMS, gd.RestoredAfterMS, gd.ImpactMS, gd.RefusedCalls)
		if gd.Error != "" {
			fmt.Fprintf(&b, "\n**Incomplete:** %s\n", gd.Error)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Checker\n\n")
	if r.Verdict == nil {
		b.WriteString("not run\n\n")
	} else {
		b.WriteString("| check | result | checked | violations |\n| --- | --- | --- | --- |\n")
		for _, c := range r.Verdict.Checks() {
			fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", c.Name, c.Result, c.Checked, c.Violations)
		}
		for _, c := range r.Verdict.Checks() {
			for _, d := range c.Details {
				fmt.Fprintf(&b, "- %s: %s\n", c.Name, d.Msg)
			}
			for _, n := range c.Notes {
				fmt.Fprintf(&b, "- %s (note): %s\n", c.Name, n)
			}
		}
		for _, a := range r.Verdict.Artifacts {
			fmt.Fprintf(&b, "- artifact: %s\n", a)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Faults\n\n")
	if len(r.Faults) == 0 {
		b.WriteString("none\n")
	} else {
		b.WriteString("| fault | injected | healed | writes back after |\n| --- | --- | --- | --- |\n")
		for i, f := range r.Faults {
			fo := "-"
			if i < len(r.Failover) && r.Failover[i].FirstWriteMS >= 0 {
				fo = fmt.Sprintf("%.0f ms", r.Failover[i].FirstWriteMS)
				if r.Failover[i].Probed {
					fo += " (runner's probe after the run)"
				}
			}
			fmt.Fprintf(&b, "| %s | +%.0f ms | +%.0f ms | %s |\n", f.Name, ms(f.Injected), ms(f.Healed), fo)
		}
	}
	if len(r.Refusals) > 0 {
		b.WriteString("\n## Refused by the rules (expected)\n\n" +
			"The run disabled keys and scheduled their deletion, then used them; the cluster refused as it must. " +
			"Not failures: availability leaves them out.\n\n| refusal | calls |\n| --- | --- |\n")
		for _, k := range slices.Sorted(maps.Keys(r.Refusals)) {
			fmt.Fprintf(&b, "| %s | %d |\n", k, r.Refusals[k])
		}
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n## Failures by kind\n\n| error | calls |\n| --- | --- |\n")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "| %s | %d |\n", k, r.Errors[k])
		}
		if r.NotFoundAfterCreate > 0 {
			fmt.Fprintf(&b, "\n%d NotFoundException failure(s) named a key whose CreateKey had been acknowledged before "+
				"the call began: the serving node (history.json, output.node) had not applied the create. The workload "+
				"carries each create's consistency token to every caller, so a node behind it should have answered "+
				"Unavailable and the client tried another node.\n", r.NotFoundAfterCreate)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// planeLine is one plane's availability and what it was computed over:
// "99.500% (199 of 200 ok, 1 failed (1 outages); 12 more refused by the rules, expected)".
func planeLine(p PlaneStats) string {
	return fmt.Sprintf("%.3f%% (%d of %d ok, %d failed (%d outages); %d more refused by the rules, expected)",
		100*p.Availability, p.OK, p.Calls-p.Refused, p.Failed, p.Outages, p.Refused)
}

func windows(ws []Window) string {
	if len(ws) == 0 {
		return "none"
	}
	var parts []string
	var total float64
	for _, w := range ws {
		total += w.DurationMS
		parts = append(parts, fmt.Sprintf("+%.0f..+%.0f ms", w.StartMS, w.EndMS))
	}
	return fmt.Sprintf("%.0f ms in %d window(s): %s", total, len(ws), strings.Join(parts, ", "))
}
