package autopilot

import (
	"cmp"
	"slices"
)

// Place returns the ids that should be voters. The rule:
//
//   - candidates are live voters and ready non-voters (see usable);
//   - the voter count t is the largest odd number <= min(TargetVoters,
//     candidates) that can be placed;
//   - with candidates in three or more regions, no region gets more than
//     t/2 voters (a minority), so losing any one region keeps quorum; with
//     fewer regions no cap can achieve that and none is applied;
//   - voters are dealt round-robin over regions (preferred leader region
//     first, then regions holding more current voters, for stability), and
//     inside a region to the zone with the fewest chosen so far, then to
//     current voters, then to the most caught-up.
func Place(cfg Config, st State) map[string]bool {
	cands := usable(cfg, st)
	byRegion := map[string][]Server{}
	voters := map[string]int{}
	for _, s := range cands {
		byRegion[s.Region] = append(byRegion[s.Region], s)
		if s.Suffrage == Voter {
			voters[s.Region]++
		}
	}
	spread := len(byRegion) >= 3
	t := min(cfg.TargetVoters, len(cands))
	if t%2 == 0 {
		t--
	}
	capFor := func(t int) int {
		if spread {
			return t / 2
		}
		return t
	}
	for ; t > 1; t -= 2 {
		capacity := 0
		for _, ss := range byRegion {
			capacity += min(len(ss), capFor(t))
		}
		if capacity >= t {
			break
		}
	}
	want := map[string]bool{}
	if t < 1 {
		return want
	}
	limit := capFor(t)
	if limit == 0 {
		limit = 1
	}
	regions := make([]string, 0, len(byRegion))
	for r := range byRegion {
		regions = append(regions, r)
	}
	slices.SortFunc(regions, func(a, b string) int {
		pa, pb := a == cfg.PreferredLeaderRegion, b == cfg.PreferredLeaderRegion
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(voters[b], voters[a]), cmp.Compare(len(byRegion[b]), len(byRegion[a])), cmp.Compare(a, b))
	})
	picked, zones := map[string]int{}, map[string]int{}
	for len(want) < t {
		progress := false
		for _, r := range regions {
			if len(want) == t || picked[r] >= limit {
				continue
			}
			if s, ok := pickInRegion(byRegion[r], want, zones); ok {
				want[s.ID] = true
				picked[r]++
				zones[r+"/"+s.Zone]++
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return want
}

// pickInRegion returns the best unchosen candidate of one region.
func pickInRegion(ss []Server, want map[string]bool, zones map[string]int) (Server, bool) {
	var best Server
	found := false
	for _, s := range ss {
		if want[s.ID] {
			continue
		}
		if !found || better(s, best, zones) {
			best, found = s, true
		}
	}
	return best, found
}

func better(a, b Server, zones map[string]int) bool {
	if a.IsLeader != b.IsLeader {
		return a.IsLeader // the leader cannot be demoted, so count it first
	}
	za, zb := zones[a.Region+"/"+a.Zone], zones[b.Region+"/"+b.Zone]
	if za != zb {
		return za < zb
	}
	if (a.Suffrage == Voter) != (b.Suffrage == Voter) {
		return a.Suffrage == Voter
	}
	if a.LastIndex != b.LastIndex {
		return a.LastIndex > b.LastIndex
	}
	return a.ID < b.ID
}
