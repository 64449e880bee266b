package chaos

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func topo(caps Capability) Topology {
	var nodes []NodeInfo
	for i, r := range []string{"us-east", "eu-west", "ap-south", "us-east", "eu-west", "ap-south"} {
		nodes = append(nodes, NodeInfo{ID: fmt.Sprintf("node-%d", i+1), Region: r, Alive: true})
	}
	return Topology{Nodes: nodes, Caps: caps}
}

// TestRandomScheduleReproducible: one seed gives one schedule, whatever the
// order the harness lists its nodes in; another seed gives another.
func TestRandomScheduleReproducible(t *testing.T) {
	a, err := RandomSchedule(42, time.Minute, topo(CapAll))
	if err != nil {
		t.Fatal(err)
	}
	tp := topo(CapAll)
	for i, j := 0, len(tp.Nodes)-1; i < j; i, j = i+1, j-1 {
		tp.Nodes[i], tp.Nodes[j] = tp.Nodes[j], tp.Nodes[i]
	}
	b, err := RandomSchedule(42, time.Minute, tp)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatalf("same seed, different schedules:\n%s\nvs\n%s", a, b)
	}
	c, _ := RandomSchedule(43, time.Minute, topo(CapAll))
	if a.String() == c.String() {
		t.Fatalf("seeds 42 and 43 gave the same schedule:\n%s", a)
	}
}

// TestRandomScheduleShape: every step lies inside the run's fault window,
// holds for a positive time, and uses only what the harness can do.
func TestRandomScheduleShape(t *testing.T) {
	for seed := int64(0); seed < 100; seed++ {
		for _, caps := range []Capability{CapAll, CapKill, CapPartition | CapLatency} {
			d := 10 * time.Second
			s, err := RandomSchedule(seed, d, topo(caps))
			if err != nil {
				t.Fatal(err)
			}
			if len(s) == 0 {
				t.Fatalf("seed %d caps %v: empty schedule", seed, caps)
			}
			if !caps.Has(s.Needs()) {
				t.Fatalf("seed %d: schedule needs %v, harness has %v", seed, s.Needs(), caps)
			}
			for _, st := range s {
				if st.At < d*15/100 || st.For <= 0 || st.At+st.For > d*80/100 {
					t.Fatalf("seed %d: step %+v outside [15%%, 80%%] of %v", seed, st, d)
				}
			}
		}
	}
}

func TestRandomScheduleRefusals(t *testing.T) {
	if _, err := RandomSchedule(1, time.Minute, topo(0)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no capabilities: %v, want ErrUnsupported", err)
	}
	if _, err := RandomSchedule(1, 0, topo(CapAll)); !errors.Is(err, ErrBadOptions) {
		t.Errorf("zero duration: %v, want ErrBadOptions", err)
	}
	if _, err := RandomSchedule(1, time.Minute, Topology{Caps: CapAll}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("no nodes: %v, want ErrBadOptions", err)
	}
}

func TestScenarios(t *testing.T) {
	want := []string{"disable-key", "freeze-leader", "hsm-failure", "kill-leader", "kill-region", "partition-region", "random"}
	if got := ScenarioNames(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scenarios = %v, want %v", got, want)
	}
	for _, name := range want {
		sc, err := LookupScenario(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sc.Schedule(3, 10*time.Second, topo(CapAll))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sc.DisableKey != (len(s) == 0) {
			t.Errorf("%s: %d steps; only the disable-key drill has none", name, len(s))
		}
	}
	if _, err := LookupScenario("kill-everything"); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "kill-leader") {
		t.Errorf("unknown scenario: %v, want ErrBadOptions listing the known ones", err)
	}
}

func TestCapabilityString(t *testing.T) {
	if got := (CapKill | CapWipe).String(); got != "kill,wipe" {
		t.Errorf("String = %q", got)
	}
	if got := Capability(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
	if !CapAll.Has(CapFreeze|CapLatency) || CapKill.Has(CapAll) {
		t.Error("Has is wrong")
	}
}
