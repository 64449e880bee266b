package cluster_test

import (
	"testing"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/fsm"
)

// The keystore recognises "no leader" by fsm.ErrNoLeader without importing
// this package, so cluster's sentinel must be that very value.
func TestErrNoLeaderIsTheFSMSentinel(t *testing.T) {
	if cluster.ErrNoLeader != fsm.ErrNoLeader {
		t.Fatal("cluster.ErrNoLeader is not fsm.ErrNoLeader")
	}
}
