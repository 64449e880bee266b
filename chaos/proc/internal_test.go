package proc

import (
	"errors"
	"slices"
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

func TestParsePIDs(t *testing.T) {
	got, err := parsePIDs([]byte("123\n4567\n"))
	if err != nil || !slices.Equal(got, []int{123, 4567}) {
		t.Fatalf("parsePIDs = %v, %v", got, err)
	}
	if got, err := parsePIDs(nil); err != nil || len(got) != 0 {
		t.Fatalf("parsePIDs(empty) = %v, %v", got, err)
	}
	for _, bad := range []string{"12a\n", "-1\n", "0\n", "99999999999999999999999\n"} {
		if _, err := parsePIDs([]byte(bad)); !errors.Is(err, ErrBadOutput) {
			t.Errorf("parsePIDs(%q) = %v, want ErrBadOutput", bad, err)
		}
	}
}

func FuzzParsePIDs(f *testing.F) {
	f.Add([]byte("1\n2\n"))
	f.Add([]byte(""))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pids, err := parsePIDs(b)
		for _, p := range pids {
			if err == nil && p <= 0 {
				t.Fatalf("parsePIDs(%q) gave pid %d", b, p)
			}
		}
	})
}

func TestParseStatState(t *testing.T) {
	for line, want := range map[string]byte{
		"42 (meridian) S 1 42 42 0 -1": 'S',
		"42 (a) b) c) T 1 42":          'T', // a command name with ") "
		"7 (x y) R 0":                  'R',
	} {
		if got, err := parseStatState([]byte(line)); err != nil || got != want {
			t.Errorf("parseStatState(%q) = %c, %v; want %c", line, got, err, want)
		}
	}
	for _, bad := range []string{"", "42 meridian S", "42 (meridian)", "42 (meridian)S"} {
		if _, err := parseStatState([]byte(bad)); !errors.Is(err, ErrBadOutput) {
			t.Errorf("parseStatState(%q) = %v, want ErrBadOutput", bad, err)
		}
	}
}

func FuzzParseStatState(f *testing.F) {
	f.Add([]byte("42 (meridian) S 1 42"))
	f.Add([]byte("1 ()) Z"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStatState(b) // must not panic
	})
}

func TestDropRules(t *testing.T) {
	got := dropRules(0, 2, 3100000)
	want := [][]string{
		{"-A", dropChain, "-m", "owner", "--uid-owner", "3100000", "-d", "127.0.3.0/24", "-j", "DROP"},
		{"-A", dropChain, "-m", "owner", "--uid-owner", "3100000", "-m", "connmark", "--mark", "3", "-j", "DROP"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("dropRules = %v\nwant %v", got, want)
	}
	setup := setupRules([]int{3100000, 3100001})
	last := strings.Join(setup[len(setup)-1], " ")
	if !strings.Contains(last, "--uid-owner 3100001") || !strings.Contains(last, "--set-mark 2") {
		t.Fatalf("region 1's connections are not marked 2: %s", last)
	}
}

func TestExpectedVoters(t *testing.T) {
	for _, c := range []struct{ target, nodes, want int }{
		{0, 3, 3}, {0, 6, 5}, {0, 4, 3}, {3, 6, 3}, {0, 1, 1}, {0, 9, 5},
	} {
		if got := expectedVoters(c.target, c.nodes); got != c.want {
			t.Errorf("expectedVoters(%d, %d) = %d, want %d", c.target, c.nodes, got, c.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{Binary: "/bin/true", Regions: []string{"us-east", "eu-west"}, NodesPerRegion: 2}
	c, err := good.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.UIDBase == 0 || c.ElectionTimeout == 0 || c.DeadServerGrace == 0 || c.StartTimeout == 0 {
		t.Errorf("defaults not filled: %+v", c)
	}
	for name, mut := range map[string]func(*Config){
		"no binary":    func(c *Config) { c.Binary = "" },
		"no regions":   func(c *Config) { c.Regions = nil },
		"dup region":   func(c *Config) { c.Regions = []string{"a", "a"} },
		"bad region":   func(c *Config) { c.Regions = []string{"US East"} },
		"zero nodes":   func(c *Config) { c.NodesPerRegion = 0 },
		"many nodes":   func(c *Config) { c.NodesPerRegion = 255 },
		"neg timeout":  func(c *Config) { c.ElectionTimeout = -1 },
		"neg uid base": func(c *Config) { c.UIDBase = -5 },
	} {
		c := good
		c.Regions = slices.Clone(good.Regions)
		mut(&c)
		if _, err := c.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestMembersViewFormed(t *testing.T) {
	member := func(id string, role apiv1.MemberRole, healthy bool) *apiv1.Member {
		return &apiv1.Member{NodeId: id, Role: role, Healthy: healthy, Status: apiv1.MemberStatus_MEMBER_STATUS_ALIVE}
	}
	voter, nonvoter := apiv1.MemberRole_MEMBER_ROLE_VOTER, apiv1.MemberRole_MEMBER_ROLE_NONVOTER
	ids := []string{"a", "b", "c"}
	whole := &apiv1.MembersResponse{LeaderId: "a", Members: []*apiv1.Member{
		member("a", voter, true), member("b", voter, true), member("c", voter, true)}}
	if !viewOf(whole).formed(ids, 3) {
		t.Fatal("a whole cluster is not formed")
	}
	for name, resp := range map[string]*apiv1.MembersResponse{
		"no leader": {Members: whole.Members},
		"missing":   {LeaderId: "a", Members: whole.Members[:2]},
		"unhealthy": {LeaderId: "a", Members: []*apiv1.Member{
			member("a", voter, true), member("b", voter, true), member("c", voter, false)}},
		"nonvoter": {LeaderId: "a", Members: []*apiv1.Member{
			member("a", voter, true), member("b", voter, true), member("c", nonvoter, true)}},
		"gossip only": {LeaderId: "a", Members: []*apiv1.Member{
			member("a", voter, true), member("b", voter, true), member("c", apiv1.MemberRole_MEMBER_ROLE_NONE, true)}},
	} {
		if viewOf(resp).formed(ids, 3) {
			t.Errorf("%s: reported formed", name)
		}
	}
}
