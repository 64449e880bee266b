// Package chaos injects faults into a Meridian cluster while a workload
// runs, checks the recorded history, and reports what clients saw.
//
// # The two interfaces every harness and fault meet (stable; read this first)
//
// Harness is one running cluster the chaos runner may break on purpose:
// the in-process harness (chaos/inproc, nodes inside the test binary over
// netsim), the multi-process harness (chaos/proc, `meridian server`
// processes in a network namespace), a later docker harness, and the
// address harness (NewRemote: any cluster given by address, which can do
// no infrastructure faults at all). Nodes are named by their node id.
//
//   - Capabilities says which operations the harness can do; a method the
//     harness cannot do returns an error wrapping ErrUnsupported, and the
//     runner refuses, before it starts, a scenario that needs one.
//   - Kill is SIGKILL (docker kill): the node stops at once, its data dir
//     kept. Restart starts a killed node again with the same id, data dir
//     and addresses (a running node is killed first).
//   - Freeze is SIGSTOP (docker pause), Thaw is SIGCONT (docker unpause).
//   - Partition(a, b, false) cuts regions a and b apart both ways;
//     Partition(a, b, true) drops traffic from a to b only. Heal removes
//     every partition, block and isolation (not latency, not kills).
//   - SetLatency sets the one-way delay (and uniform jitter) between two
//     regions' nodes, both directions: a round trip costs twice oneWay.
//     Zero restores the harness's baseline.
//   - FailHSM(id, true) makes the node's HSM fail every call; false heals.
//   - Wipe deletes a node's data dir and starts it empty, joining through
//     the live members (it catches up by snapshot); a running node is
//     killed first.
//   - ClientConfig(region) is how a workload client in region reaches the
//     cluster: seeds, transport security, Region set; the workload tunes
//     timeouts on top.
//   - ChaosEnabled says whether the cluster was started for chaos: the
//     runner refuses a cluster that was not unless Options.Force is set.
//
// Fault is one kind of damage with its own undo: Inject applies it through
// a Harness, Heal undoes it. A fault that picks its target when injected
// (the leader, say) remembers it for Heal, so each Fault value is used for
// one Inject/Heal pair. Schedule strings faults over time.
package chaos

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/meridiankms/meridian/client"
)

// Errors a Harness or the runner returns.
var (
	// ErrUnsupported means the harness cannot do the operation (the address
	// harness cannot kill a node it does not run, for instance).
	ErrUnsupported = errors.New("chaos: operation not supported by this harness")
	// ErrUnknownNode means no node has the id given.
	ErrUnknownNode = errors.New("chaos: unknown node")
	// ErrNoLeader means no live node leads right now.
	ErrNoLeader = errors.New("chaos: no leader")
	// ErrNotChaosEnabled means the cluster was not started with chaos
	// enabled and the caller did not override the check.
	ErrNotChaosEnabled = errors.New("chaos: cluster not started with chaos enabled")
	// ErrBadOptions marks an invalid scenario, schedule or runner option.
	ErrBadOptions = errors.New("chaos: invalid options")
)

// Capability is a set of operations a harness can perform.
type Capability uint

// The operations of Harness that a harness may lack.
const (
	CapKill      Capability = 1 << iota // Kill and Restart
	CapFreeze                           // Freeze and Thaw
	CapPartition                        // Partition and Heal
	CapLatency                          // SetLatency
	CapFailHSM                          // FailHSM
	CapWipe                             // Wipe

	// CapAll is every operation: what the in-process and multi-process
	// harnesses offer.
	CapAll = CapKill | CapFreeze | CapPartition | CapLatency | CapFailHSM | CapWipe
)

var capNames = []string{"kill", "freeze", "partition", "latency", "fail-hsm", "wipe"}

// Has reports whether c includes every operation of want.
func (c Capability) Has(want Capability) bool { return c&want == want }

// String lists the operations, e.g. "kill,partition" ("none" when empty).
func (c Capability) String() string {
	var out []string
	for i, n := range capNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// NodeInfo is one node of the cluster under test as the harness sees it.
type NodeInfo struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	APIAddr string `json:"api_addr"`
	// Alive is false between Kill and Restart; a frozen node is alive.
	Alive bool `json:"alive"`
	// Frozen is true between Freeze and Thaw.
	Frozen bool `json:"frozen,omitempty"`
	// HSMFailed is true between FailHSM(id, true) and FailHSM(id, false).
	HSMFailed bool `json:"hsm_failed,omitempty"`
}

// Harness is a cluster the runner may break on purpose. See the package
// comment for each method's contract. Methods are safe for concurrent use.
type Harness interface {
	// Name names the harness kind in reports: "inproc", "proc", "remote".
	Name() string
	// Capabilities is the set of fault operations this harness performs.
	Capabilities() Capability
	// ChaosEnabled reports whether the cluster was started for chaos.
	ChaosEnabled(ctx context.Context) (bool, error)
	// Nodes lists every node, live or not, in a stable order.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// Leader returns the id of the live node that leads (ErrNoLeader).
	Leader(ctx context.Context) (string, error)

	Kill(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	Freeze(ctx context.Context, id string) error
	Thaw(ctx context.Context, id string) error
	Partition(ctx context.Context, a, b string, oneWay bool) error
	Heal(ctx context.Context) error
	SetLatency(ctx context.Context, a, b string, oneWay, jitter time.Duration) error
	FailHSM(ctx context.Context, id string, fail bool) error
	Wipe(ctx context.Context, id string) error

	// ClientConfig is how a client in region reaches the cluster.
	ClientConfig(region string) client.Config
	// Close stops whatever the harness started (nothing, for remote).
	Close() error
}

// Regions returns the distinct regions of nodes, in first-seen order.
func Regions(nodes []NodeInfo) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range nodes {
		if !seen[n.Region] {
			seen[n.Region] = true
			out = append(out, n.Region)
		}
	}
	return out
}
