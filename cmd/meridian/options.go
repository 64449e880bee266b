package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meridiankms/meridian/client"
)

const defaultAddr = "127.0.0.1:7400"

// errInsecureRequired explains why plaintext needs an explicit flag.
var errInsecureRequired = errors.New("refusing to connect without TLS: the client has no TLS " +
	"configuration yet, so it can only speak plaintext gRPC, which exposes plaintexts, data keys and ciphertexts to anyone on the " +
	"network path; pass --insecure to accept that (for the local demo cluster or a trusted network)")

// envName is the environment variable of a flag: MERIDIAN_ then the flag's
// name in upper case with '-' as '_' (--consistency-token:
// MERIDIAN_CONSISTENCY_TOKEN), as for every option of the server.
func envName(flag string) string {
	return "MERIDIAN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// clientOptions are the flags shared by every command that calls the API.
type clientOptions struct {
	addrs    []string
	insecure bool
	timeout  time.Duration
	// noDiscovery pins calls to the given addresses; region is the
	// caller's own region, preferred by nearest-node routing.
	noDiscovery bool
	region      string
	// consistencyToken is a commit index the call must observe.
	consistencyToken uint64
	output           outputFormat

	// fromEnv names the flags whose value came from MERIDIAN_<FLAG>, so
	// errors about them name the variable the user actually set.
	fromEnv map[string]bool
}

// addClientFlags registers the connection and output flags as persistent
// flags of parent, so every subcommand accepts them, and makes each one
// fall back to its MERIDIAN_<FLAG> environment variable.
func addClientFlags(parent *cobra.Command) *clientOptions {
	o := &clientOptions{output: outputText}
	fs := parent.PersistentFlags()
	fs.StringSliceVar(&o.addrs, "addr", []string{defaultAddr},
		"comma-separated node API `ADDRS` (host:port); the first reachable one is used")
	fs.BoolVar(&o.insecure, "insecure", false,
		"use plaintext gRPC (required until TLS client configuration arrives)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "overall deadline for connecting and the call")
	fs.BoolVar(&o.noDiscovery, "no-discovery", false,
		"talk only to the --addr nodes instead of discovering the cluster and routing to the nearest healthy node")
	fs.StringVar(&o.region, "region", "", "prefer nodes in this `REGION` when routing")
	fs.Uint64Var(&o.consistencyToken, "consistency-token", 0,
		"a write's CommitIndex: the node waits until it has applied it, so this call sees that write")
	addOutputFlag(fs, &o.output)
	fs.VisitAll(func(f *pflag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	parent.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.HasSubCommands() {
			return nil // a group only prints its help
		}
		return o.applyEnv(cmd, fs)
	}
	return o
}

// addOutputFlag registers -o/--output.
func addOutputFlag(fs *pflag.FlagSet, f *outputFormat) {
	fs.VarP(f, "output", "o", "output format: text or json")
}

// applyEnv sets every flag of clientFlags that the command line did not
// give from its MERIDIAN_<FLAG> variable (the flag wins; an empty variable
// counts as unset). A value the flag would refuse is a usage error naming
// the variable.
func (o *clientOptions) applyEnv(cmd *cobra.Command, clientFlags *pflag.FlagSet) error {
	var err error
	clientFlags.VisitAll(func(pf *pflag.Flag) {
		f := cmd.Flags().Lookup(pf.Name)
		if err != nil || f == nil || f.Changed {
			return
		}
		name := envName(f.Name)
		val, ok := os.LookupEnv(name)
		if !ok || strings.TrimSpace(val) == "" {
			return
		}
		// The value's own Set, not FlagSet.Set, whose error repeats the
		// flag's name and not the variable's.
		if serr := f.Value.Set(strings.TrimSpace(val)); serr != nil {
			var ne *strconv.NumError
			if errors.As(serr, &ne) {
				serr = ne.Err
			}
			err = usageErrorf("%s=%q: not a valid --%s (%s): %v", name, val, f.Name, f.Value.Type(), serr)
			return
		}
		f.Changed = true // given, as far as every later check is concerned
		if o.fromEnv == nil {
			o.fromEnv = map[string]bool{}
		}
		o.fromEnv[f.Name] = true
	})
	return err
}

// source names where a flag's value came from, for error messages.
func (o *clientOptions) source(flag string) string {
	if o.fromEnv[flag] {
		return envName(flag)
	}
	return "--" + flag
}

// check validates the connection flags before anything is read or dialled.
func (o *clientOptions) check() error {
	if !o.insecure {
		return usageError{errInsecureRequired}
	}
	if o.timeout <= 0 {
		return usageErrorf("%s %v: must be positive", o.source("timeout"), o.timeout)
	}
	// "a, b" and a trailing comma are harmless slips, not empty addresses.
	for i := range o.addrs {
		o.addrs[i] = strings.TrimSpace(o.addrs[i])
	}
	o.addrs = slices.DeleteFunc(o.addrs, func(a string) bool { return a == "" })
	if len(o.addrs) == 0 {
		return usageError{errNoAddr}
	}
	for _, a := range o.addrs {
		if err := checkAddr(o.source("addr"), a); err != nil {
			return err
		}
	}
	return nil
}

// defaultPort is the API port of a node started with the defaults.
const defaultPort = "7400"

// checkAddr validates one API address (host:port) before anything is
// dialled: gRPC would take "localhost" as localhost:443 and a URL as a
// host name, and both would come back as a node that does not answer.
// source is how the user gave it: "--addr", "MERIDIAN_ADDR", "--from".
func checkAddr(source, addr string) error {
	suggest := func(hostport string) string {
		if strings.HasPrefix(source, "--") {
			return source + " " + hostport
		}
		return source + "=" + hostport
	}
	if strings.Contains(addr, "://") {
		msg := fmt.Sprintf("%s %q is a URL; the gRPC API is addressed as host:port", source, addr)
		if u, err := url.Parse(addr); err == nil && u.Hostname() != "" {
			port := u.Port()
			if port == "" {
				port = defaultPort
			}
			msg += ": " + suggest(net.JoinHostPort(u.Hostname(), port))
		}
		return usageError{errors.New(msg)}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" {
			host := strings.Trim(addr, "[]")
			return usageErrorf("%s %q has no port; give host:port: %s (%s is a node's default API port)",
				source, addr, suggest(net.JoinHostPort(host, defaultPort)), defaultPort)
		}
		return usageErrorf("%s %q: want host:port ([ADDRESS]:port for IPv6): %v", source, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return usageErrorf("%s %q: port %q is not a number from 1 to 65535", source, addr, port)
	}
	return nil
}

// call connects, runs fn with the command's deadline, and closes the client.
func (o *clientOptions) call(cmd *cobra.Command, fn func(context.Context, *client.Client) error) error {
	if err := o.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	cfg := client.DefaultConfig(o.addrs...)
	cfg.Insecure = true
	cfg.DialTimeout = o.timeout
	cfg.DisableDiscovery = o.noDiscovery
	cfg.Region = o.region
	c, err := client.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	defer c.Close()
	o.warnRegion(cmd, c.Nodes())
	c.ObserveCommitIndex(o.consistencyToken)
	return fn(ctx, c)
}

// warnRegion says on stderr when --region names a region none of the
// discovered nodes is in (a typo, or a region that lost every node): the
// call still goes ahead, routed by latency alone. Without discovery the
// nodes' regions are unknown, so nothing can be said.
func (o *clientOptions) warnRegion(cmd *cobra.Command, nodes []client.NodeStatus) {
	if o.region == "" {
		return
	}
	var regions []string
	for _, n := range nodes {
		if n.Region == o.region {
			return
		}
		if n.Region != "" && !slices.Contains(regions, n.Region) {
			regions = append(regions, n.Region)
		}
	}
	if len(regions) == 0 {
		return
	}
	slices.Sort(regions)
	fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s %q: no discovered node is in that region (regions: %s); routing to the nearest node instead\n",
		o.source("region"), o.region, strings.Join(regions, ", "))
}

// outputFormat is the -o flag.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "FORMAT" }
func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(strings.ToLower(s)); v {
	case outputText, outputJSON:
		*f = v
		return nil
	}
	return fmt.Errorf("unknown output format %q; allowed: text, json", s)
}
