package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/node"
)

type demoOptions struct {
	dataDir        string
	basePort       int
	logLevel       string
	regions        []string
	nodesPerRegion int
	latency        time.Duration
	jitter         time.Duration
	status         time.Duration
	chaos          bool
}

func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local multi-region cluster on the embedded soft HSM",
		Long: `Start a throwaway Meridian cluster on 127.0.0.1: --nodes-per-region nodes
in each of --regions (default three regions of one node: us-east, eu-west,
ap-south), each with its own Raft log and soft HSM; the first node creates the domain key and every other node's
HSM is enrolled with it as it joins.
Node-to-node traffic between different regions is delayed by --latency
(one way, plus up to --jitter), injected in the node transport the way
CockroachDB's "demo --global" does, so Raft and forwarding see WAN round
trips; traffic inside a region is not delayed. Nodes find each other by
gossip and autopilot spreads the voters over the regions.

It prints the endpoints and a first command to try, then a status table
(the leader and its term, or "electing a leader..." while there is none,
the last leader change and why, and per node its region, role, Raft state
and applied index), redrawn in place on a terminal or printed when it
changes otherwise, and stops cleanly on Ctrl-C. --log-level info also logs
every leader change with its reason.

Node i (0-based) listens on BASE+10*i (API), BASE+10*i+1 (Raft),
BASE+10*i+2 (metrics), BASE+10*i+3 (gossip, TCP and UDP) and BASE+10*i+4
(cluster plane: node-to-node gRPC, which clients never use; the nodes join
through node 1's); --base-port 0 picks free ports instead (the banner
shows the API and metrics ones).
Data goes to a temporary directory that is removed on exit, unless
--data-dir is given; a kept directory needs the same passphrase again, so
with --data-dir the soft HSM passphrase comes from MERIDIAN_HSM_PASSPHRASE.

--chaos starts the nodes as 'meridian server --chaos' does: they advertise
that they may be disrupted, so 'meridian chaos run --harness remote' accepts
the demo (it refuses a cluster started without it).

The demo serves plaintext gRPC: it is for trying Meridian on one machine.`,
		Example: `  meridian demo
  meridian demo --base-port 8400 --log-level info
  MERIDIAN_HSM_PASSPHRASE=change-me meridian demo --data-dir ./demo-data
  meridian demo --chaos    # then, in another terminal:
  meridian chaos run --harness remote --addr 127.0.0.1:7400 --insecure --scenario disable-key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.dataDir, "data-dir", "", "keep the cluster's data in this directory (default: a temporary one)")
	fs.IntVar(&o.basePort, "base-port", 7400, "first port: node i (0-based) uses BASE+10*i (API), +1 (Raft), +2 (metrics), +3 (gossip) and +4 (cluster plane); 0 picks free ports")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level: debug, info, warn or error")
	fs.StringSliceVar(&o.regions, "regions", []string{"us-east", "eu-west", "ap-south"}, "comma-separated region `NAMES`")
	fs.IntVar(&o.nodesPerRegion, "nodes-per-region", 1, "nodes in each region (1-5)")
	fs.DurationVar(&o.latency, "latency", 30*time.Millisecond, "simulated one-way latency between regions (0 for none)")
	fs.DurationVar(&o.jitter, "jitter", 5*time.Millisecond, "simulated latency jitter between regions")
	fs.DurationVar(&o.status, "status-interval", time.Second, "how often the status table refreshes (0 turns it off)")
	fs.BoolVar(&o.chaos, "chaos", false, chaosFlagHelp)
	return cmd
}

func runDemo(cmd *cobra.Command, o *demoOptions) error {
	total := len(o.regions) * o.nodesPerRegion
	if len(o.regions) == 0 || o.nodesPerRegion < 1 || o.nodesPerRegion > 5 {
		return usageErrorf("--regions needs at least one name and --nodes-per-region must be 1-5")
	}
	if o.basePort != 0 && (o.basePort < 1024 || o.basePort > 65535-10*total) {
		return usageErrorf("--base-port %d: must be 0 or 1024-%d for %d nodes", o.basePort, 65535-10*total, total)
	}
	if o.latency < 0 || o.jitter < 0 {
		return usageErrorf("--latency and --jitter must not be negative")
	}
	logger, err := newLogger(cmd.ErrOrStderr(), o.logLevel, "text")
	if err != nil {
		return usageError{err}
	}
	dir, pass, cleanup, err := demoStorage(o.dataDir)
	if err != nil {
		return err
	}
	defer cleanup()

	ctx := cmd.Context()
	nodes, err := startDemo(ctx, o, logger, dir, pass)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	printDemoBanner(out, nodes, dir, o.dataDir == "")
	stopStatus := func() {}
	if o.status > 0 {
		stopStatus = watchDemoStatus(ctx, out, nodes, o.status)
	}
	<-ctx.Done()
	stopStatus() // before the nodes close, so the table never reads a closed node
	fmt.Fprintln(out, "\nstopping the demo cluster ...")
	if err := node.CloseAll(nodes...); err != nil {
		return err
	}
	fmt.Fprintln(out, "stopped.")
	return nil
}

// startDemo starts the demo's nodes one by one, each joining the first,
// and returns once every one knows the leader. On error it closes the
// nodes it started.
func startDemo(ctx context.Context, o *demoOptions, logger *slog.Logger, dir string, pass []byte) (_ []*node.Node, err error) {
	sim := netsim.New()
	sim.SetDefault(o.latency, o.jitter)
	for _, r := range o.regions {
		sim.SetLatency(r, r, 0, 0)
	}
	var nodes []*node.Node
	defer func() {
		if err != nil && len(nodes) > 0 {
			_ = node.CloseAll(nodes...)
		}
	}()
	for i := 0; i < len(o.regions)*o.nodesPerRegion; i++ {
		region := o.regions[i%len(o.regions)]
		cfg := demoNodeConfig(i, region, dir, o.basePort, pass)
		cfg.Logger, cfg.Sim = logger, sim
		cfg.BuildVersion = nodeBuildVersion(o.chaos)
		if o.latency > 0 {
			cfg.WANRTT = 2 * (o.latency + o.jitter)
		}
		if i > 0 {
			// Each node has its own soft HSM file; joining enrols it: the
			// leader's HSM wraps the domain key to this node's HSM.
			cfg.Join = []string{nodes[0].ClusterAddr()} // a cluster address, never an API one
		}
		if err := checkPortsFree(cfg); err != nil {
			return nil, err
		}
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := node.Start(startCtx, cfg)
		if err == nil {
			nodes = append(nodes, n)
			err = n.Cluster().WaitForLeader(startCtx)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("start demo node %s: %w", cfg.NodeID, err)
		}
	}
	return nodes, nil
}

// demoStorage picks the data directory and the soft HSM passphrase.
func demoStorage(dataDir string) (dir string, pass []byte, cleanup func(), err error) {
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "meridian-demo-")
		if err != nil {
			return "", nil, nil, fmt.Errorf("create demo data dir: %w", err)
		}
		// A throwaway cluster gets a throwaway passphrase, held only in memory.
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return dir, []byte(hex.EncodeToString(b)), func() { _ = os.RemoveAll(dir) }, nil
	}
	p := os.Getenv(envPassphrase)
	if p == "" {
		return "", nil, nil, usageErrorf("--data-dir keeps the demo's soft HSM files, which need the same passphrase "+
			"on every start: set %s", envPassphrase)
	}
	return dataDir, []byte(p), func() {}, nil
}

// demoNodeConfig is node i's config: ports BASE+10*i .. +4 (API, Raft,
// metrics, gossip, cluster plane), or free ports when base is 0.
func demoNodeConfig(i int, region, dir string, base int, pass []byte) node.Config {
	addr := func(offset int) string {
		if base == 0 {
			return "127.0.0.1:0"
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+10*i+offset))
	}
	cfg := node.DefaultConfig()
	cfg.NodeID = "node-" + strconv.Itoa(i+1)
	cfg.Region, cfg.Zone = region, region+"-a"
	cfg.DataDir = filepath.Join(dir, cfg.NodeID)
	cfg.APIAddr, cfg.RaftAddr = addr(0), addr(1)
	cfg.MetricsAddr, cfg.GossipAddr, cfg.ClusterAddr = addr(2), addr(3), addr(4)
	cfg.GossipInsecure, cfg.GossipLAN = true, true // loopback only
	cfg.StabilizationTime = 2 * time.Second
	cfg.DeadServerGrace = 30 * time.Second
	cfg.Bootstrap = i == 0
	cfg.HSM.SoftPath = filepath.Join(cfg.DataDir, "hsm", "domain.sealed")
	cfg.HSM.Passphrase = pass
	cfg.HSM.CreateIfMissing = i == 0
	cfg.HSM.FastKDF = true // the demo's passphrase protects nothing of value
	cfg.SchedulerInterval = 10 * time.Second
	return cfg
}

// checkPortsFree turns "address already in use" into advice.
func checkPortsFree(cfg node.Config) error {
	for _, a := range []string{cfg.APIAddr, cfg.RaftAddr, cfg.MetricsAddr, cfg.GossipAddr, cfg.ClusterAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("demo needs %s free (%v); is another demo running? try --base-port", a, err)
		}
		l.Close()
	}
	return nil
}

func printDemoBanner(w io.Writer, nodes []*node.Node, dir string, temp bool) {
	fmt.Fprintf(w, "Meridian demo cluster is ready: %d nodes, soft HSM, plaintext gRPC.\n\n", len(nodes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// CLUSTER is the node-to-node plane: what a server's --join names to
	// add a node to the demo; clients use API.
	fmt.Fprintln(tw, "  NODE\tREGION\tAPI\tCLUSTER\tMETRICS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\thttp://%s/metrics\n", n.ID(), n.Region(), n.APIAddr(), n.ClusterAddr(), n.MetricsAddr())
	}
	tw.Flush()
	where := dir
	if temp {
		where += " (removed on exit)"
	}
	fmt.Fprintf(w, "\nData: %s\n\nTry, in another terminal:\n", where)
	fmt.Fprintf(w, "  export MERIDIAN_ADDR=%s\n", nodes[0].APIAddr())
	fmt.Fprintln(w, `  go run ./cmd/meridian key create --insecure --description "my first key"`)
	fmt.Fprintf(w, "\nAny node answers: --addr %s works as well. Press Ctrl-C to stop.\n", nodes[len(nodes)-1].APIAddr())
}
