package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/node/settings"
)

// Fixed ports: every node has its own loopback address in a namespace of
// its own, so nothing else can hold them.
const (
	apiPort     = 7400
	raftPort    = 7401
	metricsPort = 7402
	gossipPort  = 7403
	clusterPort = 7404 // the cluster plane: node-to-node gRPC, joins
)

// node is one `meridian server` process slot: its identity, addresses and
// directories survive kills and restarts; proc is the current process.
type node struct {
	id       string
	region   string
	regionIx int
	ip       string
	uid      int
	dataDir  string
	logPath  string
	// portOff is added to every port (Config.BindAny: 10*k for node k);
	// bindAny binds 0.0.0.0 and advertises ip.
	portOff int
	bindAny bool
	// gossipSeeds are passed as --join-gossip (RestartAt: the others
	// only know the node's old gossip address).
	gossipSeeds []string

	conn *grpc.ClientConn // harness's own connection, for Members probes

	// Guarded by Harness.mu.
	proc   *process // nil before the first start
	frozen bool
}

// addr is the node's advertised (and dialled) address for a port.
func (n *node) addr(port int) string { return n.ip + ":" + strconv.Itoa(port+n.portOff) }

// bind is the address the node listens on for a port.
func (n *node) bind(port int) string {
	if n.bindAny {
		return "0.0.0.0:" + strconv.Itoa(port+n.portOff)
	}
	return n.addr(port)
}

// advertise is what --advertise-*-addr says for a port: nothing when the
// node binds its own address (advertised as bound).
func (n *node) advertise(port int) string {
	if n.bindAny {
		return n.addr(port)
	}
	return ""
}

// alive reports whether the node's current process is running (or stopped).
func (n *node) alive() bool { return n.proc != nil && !n.proc.hasExited() }

// process is one started OS process and the goroutine that reaps it.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// wait blocks until the process is gone or ctx ends.
func (p *process) wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for pid %d to exit: %w", p.cmd.Process.Pid, ctx.Err())
	}
}

// startMode says how a node joins the cluster when its process starts.
type startMode int

const (
	startRestart   startMode = iota // existing state: neither bootstrap nor join
	startBootstrap                  // found the cluster
	startJoin                       // empty data dir: join through the members
)

// serverArgs builds the `meridian server` command line for n: a
// node.Config rendered by the server's own settings table, so the
// harness's nodes are configured as users configure theirs.
func (h *Harness) serverArgs(n *node, mode startMode, join []string) []string {
	c := h.cfg
	o := settings.Defaults()
	nc := &o.Node
	nc.NodeID, nc.Region, nc.Zone, nc.DataDir = n.id, n.region, n.region+"-a", n.dataDir
	nc.APIAddr, nc.AdvertiseAPIAddr = n.bind(apiPort), n.advertise(apiPort)
	nc.RaftAddr, nc.AdvertiseRaftAddr = n.bind(raftPort), n.advertise(raftPort)
	nc.MetricsAddr = n.bind(metricsPort)
	nc.GossipAddr, nc.AdvertiseGossipAddr, nc.GossipInsecure = n.bind(gossipPort), n.advertise(gossipPort), true
	nc.ClusterAddr, nc.AdvertiseClusterAddr = n.bind(clusterPort), n.advertise(clusterPort)
	nc.GossipSeeds = n.gossipSeeds
	nc.HSM.Backend = "soft"
	nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout
	nc.DeadServerGrace, nc.TargetVoters = c.DeadServerGrace, c.TargetVoters
	switch mode {
	case startBootstrap:
		nc.Bootstrap = true
	case startJoin:
		nc.Join = join
	}
	args := append([]string{"server", "--insecure", "--chaos", "--log-level", "info"}, settings.Args(o)...)
	return append(args, c.ExtraArgs...)
}

// spawn starts n's process from the spawner thread, inside the namespace,
// under the region's uid. The caller holds h.mu.
func (h *Harness) spawn(n *node, mode startMode, join []string) error {
	if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
		return fmt.Errorf("node %s data dir: %w", n.id, err)
	}
	if err := os.Chown(n.dataDir, n.uid, n.uid); err != nil {
		return fmt.Errorf("node %s data dir: %w", n.id, err)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node %s log: %w", n.id, err)
	}
	defer logf.Close() // the child holds its own copy
	fmt.Fprintf(logf, "=== harness: start %s (%s) at %s\n", n.id, modeName(mode), time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(h.cfg.Binary, h.serverArgs(n, mode, join)...)
	// A clean environment: the server reads MERIDIAN_* variables, and the
	// test's own must not leak into the nodes.
	cmd.Env = []string{"MERIDIAN_HSM_PASSPHRASE=" + h.passphrase, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = n.dataDir
	cmd.Stdout, cmd.Stderr = logf, logf // *os.File: no copying goroutines
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL, // if the harness dies, so do its nodes
		Credential: &syscall.Credential{Uid: uint32(n.uid), Gid: uint32(n.uid)},
	}
	var startErr error
	if err := h.ns.do(func() { startErr = cmd.Start() }); err != nil {
		return err
	}
	if startErr != nil {
		return fmt.Errorf("start node %s: %w", n.id, startErr)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	n.proc, n.frozen = p, false
	return nil
}

func modeName(m startMode) string {
	return [...]string{"restart", "bootstrap", "join"}[m]
}

// signal sends sig to n's process. The caller holds h.mu.
func (n *node) signal(sig syscall.Signal) error {
	if !n.alive() {
		return fmt.Errorf("node %s: %w", n.id, errNotRunning)
	}
	if err := n.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to node %s: %w", sig, n.id, err)
	}
	return nil
}

var errNotRunning = errors.New("not running")

// waitState polls /proc until n's process is in the wanted run state:
// stopped ('T') after SIGSTOP, anything else after SIGCONT. Signals are
// delivered asynchronously; a fault must be in force when Freeze returns.
func (n *node) waitState(ctx context.Context, stopped bool) error {
	pid := n.proc.cmd.Process.Pid
	for {
		st, err := procState(pid)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.id, err)
		}
		if (st == 'T') == stopped {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s pid %d still in state %c: %w", n.id, pid, st, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// procState reads the state letter of /proc/PID/stat.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatState(b)
}

// parseStatState extracts the state field of a /proc/PID/stat line: the
// first field after the command name, which is in parentheses and may
// itself contain spaces and parentheses.
func parseStatState(b []byte) (byte, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) || s[i+1] != ' ' {
		return 0, fmt.Errorf("%w: /proc stat line %q", ErrBadOutput, truncate(s, 64))
	}
	return s[i+2], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// dialNode opens the harness's own gRPC connection to n.
func (h *Harness) dialNode(n *node) error {
	conn, err := grpc.NewClient("passthrough:///"+n.addr(apiPort),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return h.ns.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.id, err)
	}
	n.conn = conn
	return nil
}

// members asks n for its view of the cluster, bounded by a short timeout:
// a frozen or partitioned node must not stall the caller.
func (n *node) members(ctx context.Context) (*apiv1.MembersResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return apiv1.NewKeyManagementClient(n.conn).Members(ctx, &apiv1.MembersRequest{})
}
