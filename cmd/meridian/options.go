package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
}

// addClientFlags registers the connection and output flags as persistent
// flags of parent, so every subcommand accepts them.
func addClientFlags(parent *cobra.Command) *clientOptions {
	o := &clientOptions{output: outputText}
	fs := parent.PersistentFlags()
	fs.StringSliceVar(&o.addrs, "addr", []string{defaultAddr},
		"comma-separated node API `ADDRS` (host:port); the first reachable one is used (env MERIDIAN_ADDR)")
	fs.BoolVar(&o.insecure, "insecure", false,
		"use plaintext gRPC (required until TLS client configuration arrives)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "overall deadline for connecting and the call")
	fs.BoolVar(&o.noDiscovery, "no-discovery", false,
		"talk only to the --addr nodes instead of discovering the cluster and routing to the nearest healthy node")
	fs.StringVar(&o.region, "region", "", "prefer nodes in this `REGION` when routing (env MERIDIAN_REGION)")
	fs.Uint64Var(&o.consistencyToken, "consistency-token", 0,
		"a write's CommitIndex: the node waits until it has applied it, so this call sees that write (env MERIDIAN_CONSISTENCY_TOKEN)")
	addOutputFlag(fs, &o.output)
	return o
}

// addOutputFlag registers -o/--output.
func addOutputFlag(fs *pflag.FlagSet, f *outputFormat) {
	fs.VarP(f, "output", "o", "output format: text or json")
}

// resolvedAddrs applies MERIDIAN_ADDR when --addr was not given.
func (o *clientOptions) resolvedAddrs(fs *pflag.FlagSet) []string {
	if f := fs.Lookup("addr"); f != nil && f.Changed {
		return o.addrs
	}
	if env := strings.TrimSpace(os.Getenv("MERIDIAN_ADDR")); env != "" {
		var addrs []string
		for _, a := range strings.Split(env, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		return addrs
	}
	return o.addrs
}

// check validates the connection flags before anything is read or dialled.
func (o *clientOptions) check() error {
	if !o.insecure {
		return usageError{errInsecureRequired}
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout %v: must be positive", o.timeout)
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
	cfg := client.DefaultConfig(o.resolvedAddrs(cmd.Flags())...)
	cfg.Insecure = true
	cfg.DialTimeout = o.timeout
	cfg.DisableDiscovery = o.noDiscovery
	cfg.Region = o.region
	if cfg.Region == "" {
		cfg.Region = os.Getenv("MERIDIAN_REGION")
	}
	c, err := client.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	defer c.Close()
	tok := o.consistencyToken
	if f := cmd.Flags().Lookup("consistency-token"); (f == nil || !f.Changed) && os.Getenv("MERIDIAN_CONSISTENCY_TOKEN") != "" {
		v, err := strconv.ParseUint(os.Getenv("MERIDIAN_CONSISTENCY_TOKEN"), 10, 64)
		if err != nil {
			return usageErrorf("MERIDIAN_CONSISTENCY_TOKEN %q: want a commit index (a whole number)", os.Getenv("MERIDIAN_CONSISTENCY_TOKEN"))
		}
		tok = v
	}
	c.ObserveCommitIndex(tok)
	return fn(ctx, c)
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
