package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/chaos/inproc"
	"github.com/meridiankms/meridian/chaos/proc"
)

type chaosOptions struct {
	scenario       string
	duration       time.Duration
	seed           int64
	rate           float64
	clients        int
	harness        string
	addrs          []string
	insecure       bool
	regions        []string
	nodesPerRegion int
	latency        time.Duration
	out            string
	force          bool
}

func newChaosCmd() *cobra.Command {
	group := groupCmd(&cobra.Command{
		Use:   "chaos",
		Short: "Break a cluster on purpose and check that nothing acknowledged is lost",
		Long: `Game days: kill leaders and regions, partition, freeze and fail HSMs while a
workload runs, then check the history for linearizability (porcupine), lost
writes (RPO 0) and key use past a disable. See docs/CHAOS.md.`,
		Example: `  meridian chaos run --scenario kill-leader --duration 30s
  meridian chaos run --scenario random --duration 10m --seed 7 --out ./gameday`,
	})
	group.AddCommand(newChaosRunCmd())
	return group
}

func newChaosRunCmd() *cobra.Command {
	o := &chaosOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a chaos scenario and print the report",
		Long: `Run a named scenario against a cluster while a workload runs through the
nearest-node client, then heal, let the cluster converge, check the history
and print a report (availability, control-plane outage, failover time,
requests lost, checker verdict). With --out the report (Markdown and JSON)
and the history are written there, plus the checker's artefacts when a
check fails. The command exits 1 when any check fails.

Harnesses:
  inproc  nodes inside this process (the default: nothing to set up)
  proc    real 'meridian server' processes in a network namespace this
          command makes, partitioned with iptables (needs root, ip, iptables)
  remote  a running cluster given by --addr; only faults it can cause from
          outside are available, and the cluster must have been started with
          --chaos unless --force is given

Scenarios: ` + strings.Join(chaos.ScenarioNames(), ", ") + `.`,
		Example: `  meridian chaos run --scenario kill-leader
  meridian chaos run --scenario partition-region --harness proc --duration 1m
  meridian chaos run --scenario random --duration 10m --seed 42 --rate 100 --out ./gameday
  meridian chaos run --harness remote --addr 10.0.0.1:7400 --insecure --scenario disable-key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runChaos(cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.scenario, "scenario", "kill-leader", "scenario `NAME`: "+strings.Join(chaos.ScenarioNames(), ", "))
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the workload runs; faults fall inside it")
	fs.Int64Var(&o.seed, "seed", 0, "seed for the random schedule and the workload (0: from the clock, printed)")
	fs.Float64Var(&o.rate, "rate", 50, "workload target in calls per second")
	fs.IntVar(&o.clients, "clients", 0, "concurrent workload callers (default 2 per region)")
	fs.StringVar(&o.harness, "harness", "inproc", "where the cluster runs: inproc, proc or remote")
	fs.StringSliceVar(&o.addrs, "addr", nil, "remote harness: API `ADDRS` of some nodes")
	fs.BoolVar(&o.insecure, "insecure", false, "remote harness: plaintext gRPC")
	fs.StringSliceVar(&o.regions, "regions", []string{"us-east", "eu-west", "ap-south"}, "inproc/proc: region `NAMES`")
	fs.IntVar(&o.nodesPerRegion, "nodes-per-region", 1, "inproc/proc: nodes in each region")
	fs.DurationVar(&o.latency, "latency", 0, "inproc: simulated one-way latency between regions")
	fs.StringVar(&o.out, "out", "", "write report.md, report.json and history.json to this `DIR`")
	fs.BoolVar(&o.force, "force", false, "run against a remote cluster not started with --chaos (it will be disrupted)")
	return cmd
}

func runChaos(cmd *cobra.Command, o *chaosOptions) error {
	if _, err := chaos.LookupScenario(o.scenario); err != nil {
		return usageError{err}
	}
	if o.duration <= 0 || o.rate <= 0 || o.nodesPerRegion < 1 || len(o.regions) == 0 {
		return usageErrorf("--duration, --rate and --nodes-per-region must be positive and --regions non-empty")
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	ctx := cmd.Context()
	h, cleanup, err := openChaosHarness(ctx, o)
	if err != nil {
		return err
	}
	defer cleanup()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "chaos: scenario %s on %s, %v, seed %d, %.0f calls/s\n", o.scenario, o.harness, o.duration, o.seed, o.rate)
	tty := isTerminal(out)
	rep, err := chaos.Run(ctx, chaos.Options{
		Scenario: o.scenario, Duration: o.duration, Seed: o.seed, Rate: o.rate, Clients: o.clients,
		Harness: h, OutDir: o.out, Force: o.force,
		Live: func(s chaos.Status) { printChaosStatus(out, s, tty) },
		Logf: func(format string, args ...any) { fmt.Fprintf(out, "\n"+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s", rep.Markdown())
	if o.out != "" {
		fmt.Fprintf(out, "\nreport written to %s\n", o.out)
	}
	if !rep.Passed {
		return fmt.Errorf("chaos run failed its checks (seed %d to replay)", o.seed)
	}
	return nil
}

// openChaosHarness builds the cluster to break and a function to tear it down.
func openChaosHarness(ctx context.Context, o *chaosOptions) (chaos.Harness, func(), error) {
	switch o.harness {
	case "inproc":
		dir, err := os.MkdirTemp("", "meridian-chaos-")
		if err != nil {
			return nil, nil, err
		}
		h, err := inproc.New(ctx, inproc.Config{Dir: dir, Regions: o.regions, PerRegion: o.nodesPerRegion, OneWay: o.latency})
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("start in-process cluster: %w", err)
		}
		return h, func() { h.Close(); os.RemoveAll(dir) }, nil
	case "proc":
		if err := proc.CheckRequirements(); err != nil {
			return nil, nil, err
		}
		bin, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("find this binary for the node processes: %w", err)
		}
		dir, err := os.MkdirTemp("", "meridian-chaos-proc-")
		if err != nil {
			return nil, nil, err
		}
		os.Chmod(dir, 0o755) // nodes run under per-region uids
		h, err := proc.New(ctx, proc.Config{Binary: bin, Regions: o.regions, NodesPerRegion: o.nodesPerRegion, Dir: filepath.Join(dir, "nodes")})
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("start node processes: %w", err)
		}
		return h, func() { h.Close(); os.RemoveAll(dir) }, nil
	case "remote":
		if len(o.addrs) == 0 {
			return nil, nil, usageErrorf("--harness remote needs --addr")
		}
		if !o.insecure {
			return nil, nil, usageError{errInsecureRequired}
		}
		for _, a := range o.addrs {
			if err := checkAddr("--addr", a); err != nil {
				return nil, nil, err
			}
		}
		h, err := chaos.NewRemote(ctx, chaos.RemoteConfig{Addrs: o.addrs, Insecure: true})
		if err != nil {
			return nil, nil, err
		}
		return h, func() { h.Close() }, nil
	}
	return nil, nil, usageErrorf("--harness %q: want inproc, proc or remote", o.harness)
}

// printChaosStatus is the live view: one line, redrawn on a terminal.
// Refusals the run made expected (a key it disabled, refused) are counted
// apart from the failures, which are listed by error name.
func printChaosStatus(w io.Writer, s chaos.Status, tty bool) {
	var errs []string
	for name, n := range s.Errors {
		errs = append(errs, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(errs)
	faults := "none"
	if len(s.Faults) > 0 {
		faults = strings.Join(s.Faults, ",")
	}
	line := fmt.Sprintf("%6.1fs ops=%d avail=%.2f%% recent=%.2f%% p99=%v fault=%s refused(expected)=%d failed=[%s]",
		s.Elapsed.Seconds(), s.Ops, 100*s.Availability, 100*s.RecentAvailability,
		s.P99.Round(time.Millisecond), faults, s.RefusedTotal(), strings.Join(errs, " "))
	if tty {
		fmt.Fprintf(w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(w, line)
}
