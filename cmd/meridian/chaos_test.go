package main

import (
	"strings"
	"testing"
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
