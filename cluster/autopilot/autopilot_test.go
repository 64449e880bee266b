package autopilot

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{TargetVoters: 5, MaxLagEntries: 10, StabilizationTime: 10 * time.Second,
		DeadServerGrace: time.Minute, TransferHysteresis: 30 * time.Second}
}

// srv builds a server from "id:region:zone:suffrage:status" shorthand with
// suffrage v/n/- and status a/s/d/l/u (upper case D/L/U: for longer than the
// grace); everything else healthy, caught up and stable.
func srv(spec string) Server {
	f := strings.Split(spec, ":")
	s := Server{ID: f[0], Region: f[1], Zone: f[2], Reachable: true, LastIndex: 100,
		AliveSince: t0.Add(-time.Hour), StatusSince: t0.Add(-time.Hour)}
	s.Suffrage = map[string]Suffrage{"v": Voter, "n": Nonvoter, "-": None}[f[3]]
	s.Status = map[string]Status{"a": Alive, "s": Suspect, "d": Dead, "l": Left, "u": Unknown}[strings.ToLower(f[4])]
	if s.Status != Alive && s.Status != Suspect {
		s.StatusSince = t0.Add(-10 * time.Second)
		if f[4] != strings.ToLower(f[4]) {
			s.StatusSince = t0.Add(-2 * time.Minute)
		}
	}
	return s
}

func state(specs ...string) State {
	st := State{Now: t0, LeaderLastIndex: 100, LeaderSince: t0.Add(-time.Hour)}
	for i, sp := range specs {
		s := srv(sp)
		s.IsLeader = i == 0
		st.Servers = append(st.Servers, s)
	}
	return st
}

func render(as []Action) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%s %s", a.Kind, a.ID))
	}
	return strings.Join(parts, ", ")
}

func votersByRegion(cfg Config, st State) map[string]int {
	out := map[string]int{}
	for _, s := range st.Servers {
		if Place(cfg, st)[s.ID] {
			out[s.Region]++
		}
	}
	return out
}

func TestPlaceSpreadsSoNoRegionHoldsAMajority(t *testing.T) {
	cases := []struct {
		name  string
		st    State
		want  map[string]int
		prefR string
	}{
		{"3x2 target 5", state("a1:A:A1:v:a", "a2:A:A2:n:a", "b1:B:B1:n:a", "b2:B:B2:n:a", "c1:C:C1:n:a", "c2:C:C2:n:a"),
			map[string]int{"A": 2, "B": 2, "C": 1}, ""},
		{"3x2 preferred C gets the 2", state("a1:A:A1:v:a", "a2:A:A2:n:a", "b1:B:B1:n:a", "b2:B:B2:n:a", "c1:C:C1:n:a", "c2:C:C2:n:a"),
			map[string]int{"A": 2, "B": 1, "C": 2}, "C"},
		{"all in one region then two singles -> 1-1-1",
			state("a1:A:A1:v:a", "a2:A:A1:v:a", "a3:A:A1:v:a", "b1:B:B1:n:a", "c1:C:C1:n:a"),
			map[string]int{"A": 1, "B": 1, "C": 1}, ""},
		{"two regions: no cap possible, 3 voters", state("a1:A:A1:v:a", "a2:A:A1:n:a", "b1:B:B1:n:a", "b2:B:B1:n:a"),
			map[string]int{"A": 2, "B": 1}, ""},
		{"regions of 1", state("a1:A:A1:v:a", "b1:B:B1:n:a", "c1:C:C1:n:a", "d1:D:D1:n:a", "e1:E:E1:n:a"),
			map[string]int{"A": 1, "B": 1, "C": 1, "D": 1, "E": 1}, ""},
		{"single node", state("a1:A:A1:v:a"), map[string]int{"A": 1}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.PreferredLeaderRegion = tc.prefR
			got := votersByRegion(cfg, tc.st)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("voters by region = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlacePrefersZoneSpreadThenCurrentVoters(t *testing.T) {
	// Region A may hold 2 of 5; it has two voters in zone A1 and a
	// non-voter in A2: the second A voter should be in A2.
	st := state("a1:A:A1:v:a", "a2:A:A1:v:a", "a3:A:A2:n:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:n:a")
	want := Place(testConfig(), st)
	if !want["a1"] || want["a2"] || !want["a3"] {
		t.Errorf("placement %v: want a1 and a3 (zones A1, A2), not a2", want)
	}
}

func TestDecide(t *testing.T) {
	lagging := state("a1:A:A1:v:a", "b1:B:B1:n:a")
	lagging.Servers[1].LastIndex = 50
	fresh := state("a1:A:A1:v:a", "b1:B:B1:n:a")
	fresh.Servers[1].AliveSince = t0.Add(-time.Second)
	unreach := state("a1:A:A1:v:a", "b1:B:B1:n:a")
	unreach.Servers[1].Reachable = false
	novote := state("a1:A:A1:v:a", "b1:B:B1:n:a", "c1:C:C1:n:a", "d1:D:D1:n:a")
	novote.Servers[2].NoVote = true

	cases := []struct {
		name string
		st   State
		want string
	}{
		{"gossip-only node is added as non-voter", state("a1:A:A1:v:a", "b1:B:B1:-:a"), "add-nonvoter b1"},
		{"dead gossip-only node is not added", state("a1:A:A1:v:a", "b1:B:B1:-:d"), ""},
		{"caught-up stable non-voter is promoted", state("a1:A:A1:v:a", "b1:B:B1:n:a", "c1:C:C1:n:a"),
			"promote b1, promote c1"},
		{"lagging non-voter waits", lagging, ""},
		{"unstable non-voter waits", fresh, ""},
		{"unreachable non-voter waits", unreach, ""},
		{"no-vote non-voter is never promoted", novote, "promote b1, promote d1"},
		{"healthy spread is left alone",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:v:a", "c2:C:C2:n:a"), ""},
		{"dead voter is replaced by a non-voter of its region first",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:v:d", "c2:C:C2:n:a"), "promote c2"},
		{"then the dead voter is demoted",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:v:d", "c2:C:C2:v:a"), "demote c1"},
		{"over-represented region loses a voter, one at a time",
			state("a1:A:A1:v:a", "a2:A:A1:v:a", "a3:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:v:a"), "demote a2"},
		{"lost region (two left): healthy voters are kept",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:v:d", "c2:C:C2:n:d"), "demote c1"},
		{"dead non-voter within grace stays", state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:n:d"), ""},
		{"dead non-voter past grace is removed",
			state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:n:D"), "remove c1"},
		{"left voter past grace is removed", state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:v:L"), "remove c1"},
		{"unknown voter within grace is not failed", state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:v:u"), ""},
		// Removal safety: the cases the issue names.
		{"3 voters one dead: removal keeps a live majority",
			state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:v:D"), "remove c1"},
		{"3 voters two dead: never (no quorum to spare)",
			state("a1:A:A1:v:a", "b1:B:B1:v:D", "c1:C:C1:v:D"), ""},
		{"5 voters two dead: one removal per step",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:D", "c1:C:C1:v:D"), "remove b2"},
		{"5 voters three dead: never",
			state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:D", "b2:B:B2:v:D", "c1:C:C1:v:D"), ""},
		{"regions of 1, one dead within grace: demoted, not removed",
			state("a1:A:A1:v:a", "b1:B:B1:v:a", "c1:C:C1:v:d"), "demote c1"},
		{"leader is never dropped even when over-represented",
			state("a1:A:A1:v:a", "a2:A:A1:v:a", "b1:B:B1:v:a"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(Decide(testConfig(), tc.st)); got != tc.want {
				t.Errorf("Decide = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSafeToDrop(t *testing.T) {
	cases := []struct {
		st   State
		id   string
		want bool
	}{
		{state("a:A:A:v:a", "b:B:B:v:a", "c:C:C:v:d"), "c", true},
		{state("a:A:A:v:a", "b:B:B:v:a", "c:C:C:v:a"), "c", true},  // 2 live of 2
		{state("a:A:A:v:a", "b:B:B:v:a", "c:C:C:v:d"), "b", false}, // 1 live of 2
		{state("a:A:A:v:a", "b:B:B:v:a", "c:C:C:v:a", "d:D:D:v:d", "e:E:E:v:d"), "a", false},
		{state("a:A:A:v:a"), "a", false},                          // never the last voter
		{state("a:A:A:v:a", "b:B:B:v:s", "c:C:C:v:d"), "c", true}, // suspect counts as live
	}
	// A region going down node by node: d has left, c is gone but gossip
	// has not said so yet (it missed this round's status poll). Dropping e
	// would leave a and b as the only live voters of four: no quorum.
	stale := state("a:A:A:v:a", "b:B:B:v:a", "c:C:C:v:a", "d:C:C:v:l", "e:E:E:v:a")
	stale.Servers[2].Reachable = false
	cases = append(cases, struct {
		st   State
		id   string
		want bool
	}{stale, "e", false})
	for i, tc := range cases {
		if got := SafeToDrop(tc.st.Servers, tc.id); got != tc.want {
			t.Errorf("case %d: SafeToDrop(%s) = %v, want %v", i, tc.id, got, tc.want)
		}
	}
}

func TestLeadershipTransferToPreferredRegion(t *testing.T) {
	cfg := testConfig()
	cfg.PreferredLeaderRegion = "B"
	base := func() State {
		return state("a1:A:A1:v:a", "a2:A:A2:v:a", "b1:B:B1:v:a", "b2:B:B2:v:a", "c1:C:C1:v:a")
	}
	st := base()
	if got := render(Decide(cfg, st)); got != "transfer-leadership b1" {
		t.Errorf("Decide = %q, want transfer to b1", got)
	}
	st = base()
	st.LeaderSince = t0.Add(-time.Second) // new leader: hysteresis holds
	if got := render(Decide(cfg, st)); got != "" {
		t.Errorf("within hysteresis: Decide = %q, want nothing", got)
	}
	st = base()
	for i := range st.Servers {
		if st.Servers[i].Region == "B" {
			st.Servers[i].LastIndex = 1 // lagging
		}
	}
	if got := render(Decide(cfg, st)); got != "" {
		t.Errorf("lagging preferred voters: Decide = %q, want nothing", got)
	}
	st = base()
	st.Servers[0].IsLeader, st.Servers[2].IsLeader = false, true
	if got := render(Decide(cfg, st)); got != "" {
		t.Errorf("leader already in B: Decide = %q, want nothing", got)
	}
	st = base()
	st.Servers[2].LastIndex = 99 // b2 is more caught up
	if a := Decide(cfg, st); len(a) != 1 || a[0].ID != "b2" {
		t.Errorf("Decide = %q, want the most caught-up B voter", render(a))
	}
}

func TestDecideConvergesFromBootstrap(t *testing.T) {
	// Apply decisions to a simulated config until nothing changes: the
	// result must be the 2-2-1 spread, reached without unsafe steps.
	cfg := testConfig()
	st := state("a1:A:A1:v:a", "a2:A:A2:-:a", "b1:B:B1:-:a", "b2:B:B2:-:a", "c1:C:C1:-:a", "c2:C:C2:-:a")
	for step := 0; step < 20; step++ {
		acts := Decide(cfg, st)
		if len(acts) == 0 {
			break
		}
		for _, a := range acts {
			i := slices.IndexFunc(st.Servers, func(s Server) bool { return s.ID == a.ID })
			switch a.Kind {
			case AddNonvoter:
				st.Servers[i].Suffrage = Nonvoter
			case Promote:
				st.Servers[i].Suffrage = Voter
			case Demote:
				st.Servers[i].Suffrage = Nonvoter
			default:
				t.Fatalf("unexpected %s %s", a.Kind, a.ID)
			}
		}
	}
	got := map[string]int{}
	for _, s := range st.Servers {
		if s.Suffrage == Voter {
			got[s.Region]++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(map[string]int{"A": 2, "B": 2, "C": 1}) {
		t.Errorf("converged to %v, want A:2 B:2 C:1", got)
	}
}
