package main

import (
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos"
)

// The chaos command refuses bad set-ups before it starts any cluster.
func TestChaosRunRefusesBadSetups(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"chaos", "run", "--scenario", "meteor-strike"}, "meteor-strike"},
		{"non-positive duration", []string{"chaos", "run", "--duration", "0s"}, "--duration"},
		{"unknown harness", []string{"chaos", "run", "--harness", "vm"}, "want inproc, proc or remote"},
		{"remote without addr", []string{"chaos", "run", "--harness", "remote"}, "needs --addr"},
		{"remote without --insecure", []string{"chaos", "run", "--harness", "remote", "--addr", "127.0.0.1:1"}, "--insecure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, "", tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 mentioning %q", code, errOut, tc.want)
			}
		})
	}
}

// The live line counts the refusals the run made expected apart from the
// failures, which it lists by error name.
func TestPrintChaosStatus(t *testing.T) {
	var b strings.Builder
	printChaosStatus(&b, chaos.Status{Elapsed: 12 * time.Second, Ops: 580, Availability: 1, RecentAvailability: 1,
		Refusals: map[string]int{chaos.ReasonNotPending: 5, chaos.ReasonDisabled: 2},
		Errors:   map[string]int{"Unavailable": 1}, Faults: []string{"kill-leader(node-1)"}}, false)
	want := "  12.0s ops=580 avail=100.00% recent=100.00% p99=0s fault=kill-leader(node-1) refused(expected)=7 failed=[Unavailable=1]\n"
	if b.String() != want {
		t.Fatalf("live line\n%q, want\n%q", b.String(), want)
	}
}
