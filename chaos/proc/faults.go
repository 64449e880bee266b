package proc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/meridiankms/meridian/chaos"
)

// The fault half of chaos.Harness: real signals, real data dirs, real
// packet drops.

// Kill implements chaos.Harness: SIGKILL, then wait until the process is
// reaped, so the node is really gone when Kill returns.
func (h *Harness) Kill(ctx context.Context, id string) error {
	h.mu.Lock()
	n, err := h.node(id)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	if !n.alive() {
		h.mu.Unlock()
		return nil
	}
	p := n.proc
	err = n.signal(syscall.SIGKILL)
	n.frozen = false
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return p.wait(ctx)
}

// Restart implements chaos.Harness: the same id, data dir and addresses,
// neither bootstrapping nor joining (the node has its state). It returns
// once the node's API answers.
func (h *Harness) Restart(ctx context.Context, id string) error {
	return h.relaunch(ctx, id, startRestart)
}

// Wipe implements chaos.Harness: kill, delete the data dir (Raft state and
// the sealed domain key) and start empty with --join through the live
// members, which enrol its HSM and send it a snapshot.
func (h *Harness) Wipe(ctx context.Context, id string) error {
	return h.relaunch(ctx, id, startJoin)
}

// RestartAt restarts a node as a container is restarted elsewhere: a
// graceful stop (SIGTERM: it leaves gossip), then a start on its state
// advertising loopback address ip and, so that nothing answers at the
// old address any more, a new block of ports (+500). It needs
// Config.BindAny (the node binds 0.0.0.0, only what it advertises
// changes), and the cluster must learn the new addresses from the node
// itself (its gossip, joined through --join-gossip seeds): no --join.
// Later faults and views use the new address.
func (h *Harness) RestartAt(ctx context.Context, id, ip string) error {
	if !h.cfg.BindAny {
		return fmt.Errorf("%w: RestartAt needs Config.BindAny (the node binds its own address otherwise)", ErrConfig)
	}
	h.mu.Lock()
	n, err := h.node(id)
	var p *process
	if err == nil && n.alive() {
		p = n.proc
		err = n.signal(syscall.SIGTERM)
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if p != nil {
		if err := p.wait(ctx); err != nil {
			return err
		}
	}
	h.mu.Lock()
	old := n.conn
	n.ip, n.portOff = ip, n.portOff+500
	// The others know only its old gossip address: it finds them, as a
	// moved container does, through its gossip seeds.
	n.gossipSeeds = nil
	for _, o := range h.nodes {
		if o != n && o.alive() {
			n.gossipSeeds = append(n.gossipSeeds, o.addr(gossipPort))
		}
	}
	if err = h.dialNode(n); err == nil {
		_ = old.Close()
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return h.relaunch(ctx, id, startRestart)
}

func (h *Harness) relaunch(ctx context.Context, id string, mode startMode) error {
	if err := h.Kill(ctx, id); err != nil {
		return err
	}
	h.mu.Lock()
	n, err := h.node(id)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	var join []string
	if mode == startJoin {
		if err := os.RemoveAll(n.dataDir); err != nil {
			h.mu.Unlock()
			return fmt.Errorf("wipe node %s: %w", id, err)
		}
		for _, o := range h.nodes {
			if o != n && o.alive() && !o.frozen {
				join = append(join, o.addr(clusterPort))
			}
		}
		if len(join) == 0 {
			h.mu.Unlock()
			return fmt.Errorf("wipe node %s: %w: no live member to join through", id, chaos.ErrNoLeader)
		}
	}
	err = h.spawn(n, mode, join)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	return h.waitFor(ctx, n, func(membersView) bool { return true })
}

// Freeze implements chaos.Harness: SIGSTOP, returning once the kernel
// reports the process stopped.
func (h *Harness) Freeze(ctx context.Context, id string) error {
	return h.stopCont(ctx, id, true)
}

// Thaw implements chaos.Harness: SIGCONT. Thawing a node that is not
// running (killed while frozen) does nothing.
func (h *Harness) Thaw(ctx context.Context, id string) error {
	return h.stopCont(ctx, id, false)
}

func (h *Harness) stopCont(ctx context.Context, id string, stop bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, err := h.node(id)
	if err != nil {
		return err
	}
	if !stop && !n.alive() {
		return nil
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := n.signal(sig); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.waitState(ctx, stop); err != nil {
		return err
	}
	n.frozen = stop
	return nil
}

// Partition implements chaos.Harness with iptables rules in the
// namespace; see firewall.go for why the rules match on uids and marks.
// The harness's own traffic (clients, probes) is never dropped: it models
// the links between regions, not the clients' links to them.
func (h *Harness) Partition(ctx context.Context, a, b string, oneWay bool) error {
	h.mu.Lock()
	ai, bi := slices.Index(h.cfg.Regions, a), slices.Index(h.cfg.Regions, b)
	closed := h.closed
	h.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case ai < 0 || bi < 0 || ai == bi:
		return fmt.Errorf("%w: partition %q from %q: want two different regions of %v", chaos.ErrBadOptions, a, b, h.cfg.Regions)
	}
	rules := dropRules(ai, bi, h.cfg.UIDBase+ai)
	if !oneWay {
		rules = append(rules, dropRules(bi, ai, h.cfg.UIDBase+bi)...)
	}
	if err := h.ns.iptables(ctx, rules); err != nil {
		return fmt.Errorf("partition %s from %s: %w", a, b, err)
	}
	return nil
}

// Heal implements chaos.Harness: every partition rule goes at once.
func (h *Harness) Heal(ctx context.Context) error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := h.ns.iptables(ctx, healRules()); err != nil {
		return fmt.Errorf("heal partitions: %w", err)
	}
	return nil
}

// SetLatency implements chaos.Harness; it is unsupported: this kernel has
// no netem, and the node transport's simulated latency (cluster/netsim)
// has no server flag yet.
func (h *Harness) SetLatency(context.Context, string, string, time.Duration, time.Duration) error {
	return fmt.Errorf("%w: proc harness: latency needs netem (absent from this kernel) or a `meridian server` "+
		"flag for the transport's simulated latency, which does not exist yet", chaos.ErrUnsupported)
}

// FailHSM implements chaos.Harness; it is unsupported: the soft HSM lives
// inside the node process, out of the harness's reach.
func (h *Harness) FailHSM(context.Context, string, bool) error {
	return fmt.Errorf("%w: proc harness: the soft HSM runs inside the node process and the server "+
		"has no fault endpoint to fail it", chaos.ErrUnsupported)
}
