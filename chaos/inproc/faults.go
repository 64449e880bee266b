package inproc

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/internal/wait"
)

// Kill stops node id as abruptly as one process can stop a part of
// itself: its gate cuts every client and peer connection first, then the
// node closes (Raft, keystore, HSM). Killing a killed node does nothing.
func (h *Harness) Kill(_ context.Context, id string) error {
	m, err := h.member(id)
	if err != nil {
		return err
	}
	h.unfreeze(m) // SIGKILL ends a stopped process too
	if h.c.Node(m.i) == nil {
		return nil
	}
	m.setDown(true)
	if err := h.c.StopNode(m.i); err != nil {
		return fmt.Errorf("inproc: kill %s: %w", id, err)
	}
	return nil
}

// Restart starts node id again on its data dir and addresses, joining
// through the live nodes; a running node is killed first.
func (h *Harness) Restart(ctx context.Context, id string) error {
	if err := h.Kill(ctx, id); err != nil {
		return err
	}
	m, err := h.member(id)
	if err != nil {
		return err
	}
	return h.start(ctx, m)
}

// Freeze approximates SIGSTOP inside one process: the node's gates (API
// and cluster plane) hold every byte from clients and peers, the Sim isolates its Raft and
// forwarding traffic, and its HSM holds every call. Unlike a stopped
// process, the node's own timers keep running (a frozen leader steps down
// on its own when its lease lapses, instead of waking up still believing
// it leads); chaos/proc freezes real processes for that case.
func (h *Harness) Freeze(_ context.Context, id string) error {
	m, err := h.member(id)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c.Node(m.i) == nil {
		return fmt.Errorf("inproc: freeze %s: node is not running: %w", id, chaos.ErrUnknownNode)
	}
	m.frozen = true
	m.freeze()
	h.c.Sim.Isolate(id)
	h.c.Faults(m.i).Hold()
	return nil
}

// Thaw undoes Freeze.
func (h *Harness) Thaw(_ context.Context, id string) error {
	m, err := h.member(id)
	if err != nil {
		return err
	}
	h.unfreeze(m)
	return nil
}

func (h *Harness) unfreeze(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !m.frozen {
		return
	}
	m.frozen = false
	h.c.Faults(m.i).Release()
	h.c.Sim.Reconnect(m.id)
	m.thaw()
}

// Partition cuts regions a and b apart (both ways), or drops a's traffic
// to b only (oneWay). Clients are outside the Sim: a partition separates
// nodes from nodes, and each region's clients still reach its nodes.
func (h *Harness) Partition(_ context.Context, a, b string, oneWay bool) error {
	if a == b {
		return fmt.Errorf("%w: partition %s from itself", chaos.ErrBadOptions, a)
	}
	if oneWay {
		h.c.Sim.Block(a, b)
	} else {
		h.c.Sim.Partition(a, b)
	}
	return nil
}

// Heal removes every partition and block; frozen nodes stay isolated
// until thawed.
func (h *Harness) Heal(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.c.Sim.HealAll()
	for _, m := range h.members {
		if m.frozen {
			h.c.Sim.Isolate(m.id)
		}
	}
	return nil
}

// SetLatency sets the one-way latency between regions a and b; zero
// restores the baseline (Config.OneWay between regions, none inside one).
func (h *Harness) SetLatency(_ context.Context, a, b string, oneWay, jitter time.Duration) error {
	if oneWay < 0 || jitter < 0 || oneWay > time.Minute || jitter > time.Minute {
		return fmt.Errorf("%w: latency %v ± %v", chaos.ErrBadOptions, oneWay, jitter)
	}
	if oneWay == 0 && jitter == 0 && a != b {
		oneWay, jitter = h.cfg.OneWay, h.cfg.Jitter
	}
	h.c.Sim.SetLatency(a, b, oneWay, jitter)
	return nil
}

// FailHSM makes node id's HSM fail every call (or work again); the switch
// survives restarts.
func (h *Harness) FailHSM(_ context.Context, id string, fail bool) error {
	m, err := h.member(id)
	if err != nil {
		return err
	}
	h.c.Faults(m.i).Fail(fail)
	return nil
}

// Wipe kills node id if it runs, deletes its data dir (its soft HSM file
// with it) and starts it empty: it joins through the live nodes, is
// enrolled again, and catches up from a snapshot.
func (h *Harness) Wipe(ctx context.Context, id string) error {
	if err := h.Kill(ctx, id); err != nil {
		return err
	}
	m, err := h.member(id)
	if err != nil {
		return err
	}
	if err := removeDataDir(h.c.NodeConfig(m.i).DataDir); err != nil {
		return err
	}
	return h.start(ctx, m)
}

// WaitConverged waits until every running, unfrozen node is in the
// leader's Raft configuration, knows the leader and has applied the
// leader's commit index.
func (h *Harness) WaitConverged(ctx context.Context) error {
	if err := wait.Until(ctx, 20*time.Millisecond, func() bool { return h.converged(ctx) }); err != nil {
		return fmt.Errorf("inproc: cluster did not converge: %w", err)
	}
	return nil
}

func (h *Harness) converged(ctx context.Context) bool {
	id, err := h.Leader(ctx)
	if err != nil {
		return false
	}
	leader := h.Node(id)
	if leader == nil {
		return false
	}
	servers, err := leader.Cluster().Servers(ctx)
	if err != nil {
		return false
	}
	inConfig := map[string]bool{}
	voters := 0
	for _, s := range servers {
		inConfig[string(s.ID)] = true
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	// Autopilot promotes caught-up nodes to voters after its stabilization
	// time; until then a single failure may cost the quorum.
	if voters < min(h.liveCount(), 5) {
		return false
	}
	commit := leader.Cluster().Stats().CommitIndex
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		n := h.c.Node(m.i)
		if n == nil || m.frozen {
			continue
		}
		if !inConfig[m.id] {
			return false
		}
		if l, _ := n.Cluster().Leader(); l == "" {
			return false
		}
		// Raft's applied index: configuration entries never reach the fsm.
		if n.Cluster().Stats().AppliedIndex < commit {
			return false
		}
	}
	return true
}

func (h *Harness) liveCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.members {
		if h.c.Node(m.i) != nil && !m.frozen {
			n++
		}
	}
	return n
}
