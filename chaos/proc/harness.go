// Package proc is the multi-process chaos harness: each node a real
// `meridian server` OS process on its own loopback address, all inside one
// network namespace the harness creates, broken with real signals and
// iptables rules. It implements chaos.Harness; see DESIGN.md.
package proc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/internal/wait"
)

// Harness runs a cluster of `meridian server` processes in a network
// namespace of its own. It implements chaos.Harness; methods are safe for
// concurrent use.
type Harness struct {
	cfg        Config
	ns         *netns
	dir        string
	ownDir     bool
	passphrase string // the soft HSMs'; only ever in the nodes' environment

	mu     sync.Mutex
	nodes  []*node // stable order: region by region
	byID   map[string]*node
	closed bool
}

var _ chaos.Harness = (*Harness)(nil)

// CheckRequirements reports what the machine lacks to run the harness:
// root (namespaces, iptables, other uids), ip (iproute2) and iptables.
// scripts/deps.sh installs the tools.
func CheckRequirements() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: root (network namespaces, iptables and per-region uids need it)", ErrRequirement)
	}
	for _, t := range []struct{ tool, pkg string }{{"ip", "iproute2"}, {"iptables", "iptables"}} {
		if _, err := exec.LookPath(t.tool); err != nil {
			return fmt.Errorf("%w: %s not found; install it with `apt-get install -y %s` (scripts/deps.sh does)",
				ErrRequirement, t.tool, t.pkg)
		}
	}
	return nil
}

// New creates the namespace, starts every node (the first region's first
// node founds the cluster, the rest join through it) and returns once the
// cluster has a leader and every node serves as a member. On error
// everything started is torn down.
func New(ctx context.Context, cfg Config) (_ *Harness, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := CheckRequirements(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("%w: binary: %w", ErrConfig, err)
	} else if st.Mode().Perm()&0o005 != 0o005 {
		return nil, fmt.Errorf("%w: binary %s mode %v: nodes run as other users and need o+rx", ErrConfig, cfg.Binary, st.Mode().Perm())
	}
	h := &Harness{cfg: cfg, dir: cfg.Dir, byID: map[string]*node{}}
	if h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "meridian-chaos-"); err != nil {
			return nil, err
		}
		h.ownDir = true
		// Per-region uids must reach their data dirs below.
		if err := os.Chmod(h.dir, 0o711); err != nil {
			os.RemoveAll(h.dir)
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
		}
	}()
	h.passphrase = randomHex(24)
	if h.ns, err = createNetns(ctx, "meridian-chaos-"+randomHex(4)); err != nil {
		return nil, err
	}
	var uids []int
	for i := range cfg.Regions {
		uids = append(uids, cfg.UIDBase+i)
	}
	if err := h.ns.iptables(ctx, setupRules(uids)); err != nil {
		return nil, fmt.Errorf("install partition chains: %w", err)
	}
	for ri, region := range cfg.Regions {
		for ni := range cfg.NodesPerRegion {
			id := fmt.Sprintf("%s-%d", region, ni+1)
			n := &node{id: id, region: region, regionIx: ri, uid: uids[ri],
				ip:      fmt.Sprintf("127.0.%d.%d", ri+1, ni+1),
				dataDir: filepath.Join(h.dir, id, "data"), logPath: filepath.Join(h.dir, id+".log"),
				bindAny: cfg.BindAny}
			if cfg.BindAny {
				n.portOff = 10 * len(h.nodes)
			}
			if err := os.MkdirAll(filepath.Dir(n.dataDir), 0o711); err != nil {
				return nil, err
			}
			if err := h.dialNode(n); err != nil {
				return nil, err
			}
			h.nodes = append(h.nodes, n)
			h.byID[id] = n
		}
	}
	if err := h.form(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// form starts the founder, then the joiners, and waits for the cluster.
func (h *Harness) form(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	start := time.Now()
	founder := h.nodes[0]
	h.mu.Lock()
	err := h.spawn(founder, startBootstrap, nil)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if err := h.waitFor(ctx, founder, func(m membersView) bool { return m.leader == founder.id }); err != nil {
		return fmt.Errorf("founder %s never led: %w", founder.id, err)
	}
	h.logf("proc: founder %s leads after %v", founder.id, time.Since(start).Round(time.Millisecond))
	h.mu.Lock()
	for _, n := range h.nodes[1:] {
		if err = h.spawn(n, startJoin, []string{founder.addr(clusterPort)}); err != nil {
			break
		}
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	want := expectedVoters(h.cfg.TargetVoters, len(h.nodes))
	if err := h.waitFor(ctx, founder, func(m membersView) bool { return m.formed(h.ids(), want) }); err != nil {
		return fmt.Errorf("cluster of %d never formed with %d voters: %w", len(h.nodes), want, err)
	}
	h.logf("proc: %d nodes in %d regions formed (%d voters) after %v, namespace %s",
		len(h.nodes), len(h.cfg.Regions), want, time.Since(start).Round(time.Millisecond), h.ns.name)
	return nil
}

// expectedVoters mirrors autopilot's placement: the largest odd number
// not above min(target, nodes); target 0 means the server default, 5.
func expectedVoters(target, nodes int) int {
	if target == 0 {
		target = 5
	}
	t := min(target, nodes)
	if t%2 == 0 {
		t--
	}
	return t
}

func (h *Harness) ids() []string {
	var ids []string
	for _, n := range h.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// waitFor polls n's Members view until ok holds. A process that exits
// meanwhile fails the wait at once, with the end of its log.
func (h *Harness) waitFor(ctx context.Context, n *node, ok func(membersView) bool) error {
	return wait.Until(ctx, 50*time.Millisecond, func() error {
		h.mu.Lock()
		p := n.proc
		h.mu.Unlock()
		if p != nil && p.hasExited() {
			return wait.Stop(fmt.Errorf("node %s: %w (%v); log tail:\n%s", n.id, ErrNodeExited, p.err, h.LogTail(n.id, 15)))
		}
		resp, err := n.members(ctx)
		if err != nil {
			return err
		}
		if !ok(viewOf(resp)) {
			return fmt.Errorf("node %s view: leader %q, %d members", n.id, resp.GetLeaderId(), len(resp.GetMembers()))
		}
		return nil
	})
}

// WaitFormed waits until the cluster is whole again: a leader that a
// majority names, and in its view every node alive, healthy and a member,
// with the full voter count. Runs call it after healing to converge.
func (h *Harness) WaitFormed(ctx context.Context) error {
	want := expectedVoters(h.cfg.TargetVoters, len(h.nodes))
	for {
		id, err := h.Leader(ctx)
		if err == nil {
			h.mu.Lock()
			n := h.byID[id]
			h.mu.Unlock()
			var resp *apiv1.MembersResponse
			if resp, err = n.members(ctx); err == nil {
				if viewOf(resp).formed(h.ids(), want) {
					return nil
				}
				err = fmt.Errorf("leader %s's view not whole yet", id)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the cluster to re-form: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Name implements chaos.Harness.
func (h *Harness) Name() string { return "proc" }

// Capabilities implements chaos.Harness: no latency (no netem here, and
// no server flag for the transport's simulated latency yet) and no HSM
// faults (the soft HSM lives inside the process).
func (h *Harness) Capabilities() chaos.Capability {
	return chaos.CapKill | chaos.CapFreeze | chaos.CapPartition | chaos.CapWipe
}

// ChaosEnabled implements chaos.Harness: the harness started this cluster
// for chaos and nobody else uses it.
func (h *Harness) ChaosEnabled(context.Context) (bool, error) { return true, nil }

// Nodes implements chaos.Harness.
func (h *Harness) Nodes(context.Context) ([]chaos.NodeInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]chaos.NodeInfo, 0, len(h.nodes))
	for _, n := range h.nodes {
		out = append(out, chaos.NodeInfo{ID: n.id, Region: n.region, APIAddr: n.addr(apiPort),
			Alive: n.alive(), Frozen: n.alive() && n.frozen})
	}
	return out, nil
}

// Leader implements chaos.Harness: the node that a majority of all nodes
// name as leader, provided it is alive. Requiring a majority keeps a
// deposed leader cut off in a minority, which may still think it leads,
// from being taken for the cluster's.
func (h *Harness) Leader(ctx context.Context) (string, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return "", ErrClosed
	}
	var ask []*node
	for _, n := range h.nodes {
		if n.alive() && !n.frozen {
			ask = append(ask, n)
		}
	}
	total := len(h.nodes)
	h.mu.Unlock()
	votes := make(chan string, len(ask))
	var wg sync.WaitGroup
	for _, n := range ask {
		wg.Go(func() {
			if resp, err := n.members(ctx); err == nil {
				votes <- resp.GetLeaderId()
			}
		})
	}
	wg.Wait()
	close(votes)
	count := map[string]int{}
	for v := range votes {
		if v != "" {
			count[v]++
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, c := range count {
		if n := h.byID[id]; n != nil && n.alive() && c > total/2 {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: no node named by a majority of %d (views %v)", chaos.ErrNoLeader, total, count)
}

func (h *Harness) node(id string) (*node, error) {
	if h.closed {
		return nil, ErrClosed
	}
	n := h.byID[id]
	if n == nil {
		return nil, fmt.Errorf("%w: %q", chaos.ErrUnknownNode, id)
	}
	return n, nil
}

// ClientConfig implements chaos.Harness: every node as a seed, plaintext,
// and a dialer that connects from inside the namespace.
func (h *Harness) ClientConfig(region string) client.Config {
	h.mu.Lock()
	var addrs []string
	for _, n := range h.nodes {
		addrs = append(addrs, n.addr(apiPort))
	}
	h.mu.Unlock()
	cfg := client.DefaultConfig(addrs...)
	cfg.Insecure, cfg.Region = true, region
	cfg.DialOptions = append(cfg.DialOptions, h.DialOption())
	return cfg
}

// DialOption makes a gRPC client connect from inside the namespace, for
// callers that build their own connections.
func (h *Harness) DialOption() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return h.ns.DialContext(ctx, "tcp", addr)
	})
}

// Namespace names the harness's network namespace (for `ip netns exec`).
func (h *Harness) Namespace() string { return h.ns.name }

// Dir is where the node data dirs and logs live.
func (h *Harness) Dir() string { return h.dir }

// LogTail returns the last lines of a node's log (stdout and stderr of
// every process it ran), for a failing test to show.
func (h *Harness) LogTail(id string, lines int) string {
	b, err := os.ReadFile(filepath.Join(h.dir, id+".log"))
	if err != nil {
		return fmt.Sprintf("(no log for %s: %v)", id, err)
	}
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}

// Close kills every node (deleting a namespace does not end the processes
// in it), kills anything else left inside the namespace, deletes it, and
// removes the directory the harness made. Safe to call more than once.
func (h *Harness) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var procs []*process
	for _, n := range h.nodes {
		if n.alive() {
			// Each node leads its own process group: kill the group.
			_ = syscall.Kill(-n.proc.cmd.Process.Pid, syscall.SIGKILL)
			procs = append(procs, n.proc)
		}
		if n.conn != nil {
			n.conn.Close()
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.wait(ctx))
	}
	if h.ns != nil {
		if pids, err := h.ns.pids(ctx); err != nil {
			errs = append(errs, err)
		} else {
			for _, pid := range pids {
				// Only this harness's children enter this namespace (and
				// never this process: see lockOffMain).
				if pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		errs = append(errs, h.ns.close(ctx))
	}
	if h.ownDir {
		errs = append(errs, os.RemoveAll(h.dir))
	}
	return errors.Join(errs...)
}

func (h *Harness) logf(format string, args ...any) {
	if h.cfg.Logf != nil {
		h.cfg.Logf(format, args...)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
