package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meridiankms/meridian/chaos/workload"
)

// Fault is one kind of damage and its undo. Inject applies it through h;
// Heal undoes it (and must be safe to call after a failed Inject). Needs is
// the set of harness operations the fault uses, checked before a run.
// A Fault value serves one Inject/Heal pair: targets picked at Inject
// (the leader, say) are remembered for Heal.
type Fault interface {
	// Name describes the fault and, once injected, its target:
	// "kill-leader(node-2)".
	Name() string
	Needs() Capability
	Inject(ctx context.Context, h Harness) error
	Heal(ctx context.Context, h Harness) error
}

// target resolves id, or the current leader when id is "".
func target(ctx context.Context, h Harness, id string) (string, error) {
	if id != "" {
		return id, nil
	}
	return awaitLeader(ctx, h)
}

// leaderWait bounds how long a fault that targets the leader waits for an
// election in progress (a previous fault's heal may have started one).
const leaderWait = 10 * time.Second

// awaitLeader returns the leader, waiting out an election in progress:
// Harness.Leader answers for this instant, and a fault aimed at "the
// leader" means whoever leads once there is one, not "no fault".
func awaitLeader(ctx context.Context, h Harness) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		id, err := h.Leader(ctx)
		if !errors.Is(err, ErrNoLeader) {
			return id, err
		}
		if !workload.SleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
			return "", fmt.Errorf("no leader within %v: %w", leaderWait, err)
		}
	}
}

func named(kind, target string) string {
	if target == "" {
		return kind
	}
	return kind + "(" + target + ")"
}

// KillNode kills one node (SIGKILL) and restarts it on Heal. An empty ID
// kills whichever node leads at Inject: that is KillLeader.
type KillNode struct {
	ID     string
	killed string
}

// KillLeader returns a fault that kills the current leader.
func KillLeader() *KillNode { return &KillNode{} }

// Name implements Fault.
func (f *KillNode) Name() string {
	if f.ID == "" {
		return named("kill-leader", f.killed)
	}
	return named("kill-node", f.ID)
}

// Needs implements Fault.
func (f *KillNode) Needs() Capability { return CapKill }

// Inject implements Fault.
func (f *KillNode) Inject(ctx context.Context, h Harness) error {
	id, err := target(ctx, h, f.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	f.killed = id
	return h.Kill(ctx, id)
}

// Heal implements Fault.
func (f *KillNode) Heal(ctx context.Context, h Harness) error {
	if f.killed == "" {
		return nil
	}
	return h.Restart(ctx, f.killed)
}

// KillRegion kills every node of a region and restarts them on Heal. An
// empty Region picks the leader's region at Inject.
type KillRegion struct {
	Region string
	picked string
	killed []string
}

// Name implements Fault.
func (f *KillRegion) Name() string {
	if f.picked != "" {
		return named("kill-region", f.picked)
	}
	return named("kill-region", f.Region)
}

// Needs implements Fault.
func (f *KillRegion) Needs() Capability { return CapKill }

// Inject implements Fault.
func (f *KillRegion) Inject(ctx context.Context, h Harness) error {
	region, err := regionOrLeaders(ctx, h, f.Region)
	if err != nil {
		return fmt.Errorf("kill-region: %w", err)
	}
	f.picked = region
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Region != region || !n.Alive {
			continue
		}
		if err := h.Kill(ctx, n.ID); err != nil {
			return err
		}
		f.killed = append(f.killed, n.ID)
	}
	if len(f.killed) == 0 {
		return fmt.Errorf("kill-region %s: %w: no live node there", region, ErrUnknownNode)
	}
	return nil
}

// Heal implements Fault: the region's nodes restart together.
func (f *KillRegion) Heal(ctx context.Context, h Harness) error { return restartAll(ctx, h, f.killed) }

// restartAll restarts ids concurrently: restarted one by one, a node whose
// join needs a quorum that only the later ones complete would never start.
func restartAll(ctx context.Context, h Harness, ids []string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Restart(ctx, id)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// regionOrLeaders returns region, or the leader's region when empty.
func regionOrLeaders(ctx context.Context, h Harness, region string) (string, error) {
	if region != "" {
		return region, nil
	}
	id, err := awaitLeader(ctx, h)
	if err != nil {
		return "", err
	}
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID == id {
			return n.Region, nil
		}
	}
	return "", fmt.Errorf("leader %s: %w", id, ErrUnknownNode)
}

// FreezeNode pauses a node (SIGSTOP) and resumes it on Heal (SIGCONT). An
// empty ID freezes the leader: a paused leader must not serve stale
// control-plane answers when it wakes. See chaos/inproc for what "freeze"
// means inside one process.
type FreezeNode struct {
	ID     string
	frozen string
}

// Name implements Fault.
func (f *FreezeNode) Name() string {
	if f.ID == "" {
		return named("freeze-leader", f.frozen)
	}
	return named("freeze-node", f.ID)
}

// Needs implements Fault.
func (f *FreezeNode) Needs() Capability { return CapFreeze }

// Inject implements Fault.
func (f *FreezeNode) Inject(ctx context.Context, h Harness) error {
	id, err := target(ctx, h, f.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	f.frozen = id
	return h.Freeze(ctx, id)
}

// Heal implements Fault.
func (f *FreezeNode) Heal(ctx context.Context, h Harness) error {
	if f.frozen == "" {
		return nil
	}
	return h.Thaw(ctx, f.frozen)
}

// PartitionRegion cuts a region off from every other region. OneWay drops
// only the region's outgoing traffic: it still hears the others but they
// never hear it (a leader there keeps sending heartbeats nobody receives).
// An empty Region picks the leader's region at Inject.
type PartitionRegion struct {
	Region string
	OneWay bool
	picked string
}

// Name implements Fault.
func (f *PartitionRegion) Name() string {
	kind := "partition-region"
	if f.OneWay {
		kind = "partition-region-oneway"
	}
	if f.picked != "" {
		return named(kind, f.picked)
	}
	return named(kind, f.Region)
}

// Needs implements Fault.
func (f *PartitionRegion) Needs() Capability { return CapPartition }

// Inject implements Fault.
func (f *PartitionRegion) Inject(ctx context.Context, h Harness) error {
	region, err := regionOrLeaders(ctx, h, f.Region)
	if err != nil {
		return fmt.Errorf("partition-region: %w", err)
	}
	f.picked = region
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, other := range Regions(nodes) {
		if other == region {
			continue
		}
		if err := h.Partition(ctx, region, other, f.OneWay); err != nil {
			return err
		}
	}
	return nil
}

// Heal implements Fault.
func (f *PartitionRegion) Heal(ctx context.Context, h Harness) error { return h.Heal(ctx) }

// AddLatency sets the one-way latency and jitter between regions A and B;
// Heal restores the baseline.
type AddLatency struct {
	A, B           string
	OneWay, Jitter time.Duration
}

// Name implements Fault.
func (f *AddLatency) Name() string {
	return fmt.Sprintf("latency(%s<->%s %v±%v)", f.A, f.B, f.OneWay, f.Jitter)
}

// Needs implements Fault.
func (f *AddLatency) Needs() Capability { return CapLatency }

// Inject implements Fault.
func (f *AddLatency) Inject(ctx context.Context, h Harness) error {
	return h.SetLatency(ctx, f.A, f.B, f.OneWay, f.Jitter)
}

// Heal implements Fault.
func (f *AddLatency) Heal(ctx context.Context, h Harness) error {
	return h.SetLatency(ctx, f.A, f.B, 0, 0)
}

// FailHSM makes a node's HSM fail every call until Heal. An empty ID
// picks the leader.
type FailHSM struct {
	ID     string
	failed string
}

// Name implements Fault.
func (f *FailHSM) Name() string {
	if f.failed != "" {
		return named("hsm-failure", f.failed)
	}
	return named("hsm-failure", f.ID)
}

// Needs implements Fault.
func (f *FailHSM) Needs() Capability { return CapFailHSM }

// Inject implements Fault.
func (f *FailHSM) Inject(ctx context.Context, h Harness) error {
	id, err := target(ctx, h, f.ID)
	if err != nil {
		return fmt.Errorf("hsm-failure: %w", err)
	}
	f.failed = id
	return h.FailHSM(ctx, id, true)
}

// Heal implements Fault.
func (f *FailHSM) Heal(ctx context.Context, h Harness) error {
	if f.failed == "" {
		return nil
	}
	return h.FailHSM(ctx, f.failed, false)
}

// WipeNode kills a node on Inject and, on Heal, brings it back with its
// data dir gone: it rejoins empty and catches up by snapshot. An empty ID
// picks the leader.
type WipeNode struct {
	ID    string
	wiped string
}

// Name implements Fault.
func (f *WipeNode) Name() string {
	if f.wiped != "" {
		return named("wipe-node", f.wiped)
	}
	return named("wipe-node", f.ID)
}

// Needs implements Fault.
func (f *WipeNode) Needs() Capability { return CapKill | CapWipe }

// Inject implements Fault.
func (f *WipeNode) Inject(ctx context.Context, h Harness) error {
	id, err := target(ctx, h, f.ID)
	if err != nil {
		return fmt.Errorf("wipe-node: %w", err)
	}
	f.wiped = id
	return h.Kill(ctx, id)
}

// Heal implements Fault.
func (f *WipeNode) Heal(ctx context.Context, h Harness) error {
	if f.wiped == "" {
		return nil
	}
	return h.Wipe(ctx, f.wiped)
}

// RestartAll kills every live node at once on Inject and starts them all
// again on Heal: a full outage and cold start from the data dirs.
type RestartAll struct {
	killed []string
}

// Name implements Fault.
func (f *RestartAll) Name() string { return "restart-all" }

// Needs implements Fault.
func (f *RestartAll) Needs() Capability { return CapKill }

// Inject implements Fault.
func (f *RestartAll) Inject(ctx context.Context, h Harness) error {
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if !n.Alive {
			continue
		}
		if err := h.Kill(ctx, n.ID); err != nil {
			return err
		}
		f.killed = append(f.killed, n.ID)
	}
	return nil
}

// Heal implements Fault: every node starts at once.
func (f *RestartAll) Heal(ctx context.Context, h Harness) error { return restartAll(ctx, h, f.killed) }
