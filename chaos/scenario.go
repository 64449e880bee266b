package chaos

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Scenario is a named game day: how to build its schedule for a run.
type Scenario struct {
	Name        string
	Description string
	// Schedule builds the faults for a run of duration with seed.
	Schedule func(seed int64, duration time.Duration, topo Topology) (Schedule, error)
	// DisableKey marks the accidental-key-disable game day: the runner
	// disables the workload's hot key itself (a control-plane act, no
	// harness fault), waits until the workload notices, re-enables it and
	// measures the time to restore. It works on any harness.
	DisableKey bool
}

// window places one fault over the middle of the run: injected at 30%
// and healed at 60%, leaving the last 40% to recover and converge.
func window(duration time.Duration, f Fault) Schedule {
	return Schedule{{At: duration * 30 / 100, For: duration * 30 / 100, Fault: f}}
}

var scenarios = map[string]Scenario{
	"kill-leader": {Name: "kill-leader",
		Description: "SIGKILL the Raft leader mid-run; restart it later. Data plane must not notice; control plane back within an election.",
		Schedule: func(_ int64, d time.Duration, _ Topology) (Schedule, error) {
			return window(d, KillLeader()), nil
		}},
	"kill-region": {Name: "kill-region",
		Description: "Kill every node of the leader's region (1 of 3 or more). Callers must see no failure; writes continue in the others.",
		Schedule: func(_ int64, d time.Duration, _ Topology) (Schedule, error) {
			return window(d, &KillRegion{}), nil
		}},
	"partition-region": {Name: "partition-region",
		Description: "Cut the leader's region off from the others, both ways, then (after healing) one way only.",
		Schedule: func(_ int64, d time.Duration, _ Topology) (Schedule, error) {
			return Schedule{
				{At: d * 20 / 100, For: d * 25 / 100, Fault: &PartitionRegion{}},
				{At: d * 55 / 100, For: d * 20 / 100, Fault: &PartitionRegion{OneWay: true}},
			}, nil
		}},
	"freeze-leader": {Name: "freeze-leader",
		Description: "Pause the leader (SIGSTOP) and resume it (SIGCONT): it must not serve stale control-plane answers when it wakes.",
		Schedule: func(_ int64, d time.Duration, _ Topology) (Schedule, error) {
			return window(d, &FreezeNode{}), nil
		}},
	"hsm-failure": {Name: "hsm-failure",
		Description: "Fail one node's HSM (a seeded pick); clients must route around it.",
		Schedule: func(seed int64, d time.Duration, t Topology) (Schedule, error) {
			if len(t.Nodes) == 0 {
				return nil, fmt.Errorf("%w: hsm-failure: no nodes", ErrBadOptions)
			}
			ids := ids(t)
			sort.Strings(ids)
			return window(d, &FailHSM{ID: ids[int(uint64(seed)%uint64(len(ids)))]}), nil
		}},
	"disable-key": {Name: "disable-key", DisableKey: true,
		Description: "The accidental key disable: the hot key is disabled, the workload's errors reveal it, it is re-enabled; measures detection and time to restore.",
		Schedule: func(int64, time.Duration, Topology) (Schedule, error) {
			return nil, nil
		}},
	"random": {Name: "random",
		Description: "A seeded random schedule of every fault the harness can do, one at a time; the same seed replays it.",
		Schedule:    RandomSchedule},
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	var out []string
	for n := range scenarios {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LookupScenario returns the scenario called name.
func LookupScenario(name string) (Scenario, error) {
	s, ok := scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("%w: unknown scenario %q (have %v)", ErrBadOptions, name, ScenarioNames())
	}
	return s, nil
}
