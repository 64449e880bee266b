package keystore

import (
	"os/exec"
	"strings"
	"testing"
)

// The keystore reads the fsm replica and proposes through an Applier; it
// never needs the cluster machinery. Its build, tests included, stays free
// of raft, its stores and gossip, and of the cluster package that owns them.
func TestNoClusterDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-test", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -test: %v", err)
	}
	forbidden := []string{
		"github.com/hashicorp/raft", // raft and raft-boltdb
		"github.com/hashicorp/memberlist",
		"github.com/meridiankms/meridian/cluster",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || strings.HasPrefix(dep, f+"-") {
				t.Errorf("keystore depends on %s", dep)
			}
		}
	}
}
