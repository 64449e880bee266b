package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/meridiankms/meridian/buildinfo"
	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/settings"
)

// The secrets' environment variables (deliberately not flags: flag values
// show up in ps), declared with the settings.
const (
	envPassphrase = settings.EnvHSMPassphrase
	envPIN        = settings.EnvHSMPIN
	envGossipKey  = settings.EnvGossipKey
)

func newServerCmd() *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Meridian node",
		Long: `Run one Meridian node: the gRPC key management API, Raft replication and
the node's HSM.

A node listens on two gRPC ports for two audiences: --api-addr for clients
(keys, crypto, operator commands) and --cluster-addr for the other nodes
only (forwarded writes, joins, status polls, domain-key exchange). Let
clients reach the API port and only other nodes reach the cluster port
(and the Raft and gossip ports).

Every listener but metrics has a bind address (--api-addr, --cluster-addr,
--raft-addr, --gossip-addr) and an advertise address (--advertise-api-addr,
--advertise-cluster-addr, --advertise-raft-addr, --advertise-gossip-addr)
that clients and other nodes are told; it defaults to the bound one. A
bind to every interface (0.0.0.0, [::], as in a container) needs the
matching --advertise-*-addr. API and cluster advertise host names are
kept as names (resolved at every dial); Raft and gossip ones are resolved
at every start, and the leader updates what the cluster knows when a node
comes back at a new address. See docs/CONFIG.md.

Every option can be given three ways, in this order of precedence: a flag,
an environment variable MERIDIAN_<FLAG> (upper case, dashes as
underscores, e.g. MERIDIAN_DATA_DIR), or a key of the same name in the
--config file (YAML, JSON or TOML, e.g. "data-dir: /var/lib/meridian").

The first node of a cluster runs with --bootstrap and creates the domain key
in its HSM. Every further node starts with --join naming the cluster
address (--cluster-addr, not the API address) of one or more members, and
an HSM that holds no domain key yet: as it joins, the leader's HSM wraps the domain key to a
transport key made inside the joiner's HSM, which unwraps it (enrolment);
no person or file ever holds the key in the clear.

HSM backends: soft (the default; the domain key lives in a file sealed with
a passphrase) and pkcs11 (any PKCS#11 module, e.g. SoftHSM2 or a vendor
HSM; the token is chosen by label and its user PIN read from
--hsm-pin-file or MERIDIAN_HSM_PIN). See docs/HSM.md.

The soft HSM passphrase is read from --hsm-passphrase-file or the
MERIDIAN_HSM_PASSPHRASE environment variable, and the gossip key from
--gossip-key-file or MERIDIAN_GOSSIP_KEY, never from a flag value.

Nodes find each other by gossip (memberlist, encrypted with the gossip
key). On the leader, autopilot adds new nodes as non-voters, promotes them
once caught up, spreads --target-voters voters so that no region holds a
majority when there are three or more regions, and removes nodes dead for
longer than --dead-server-grace without ever risking quorum.

TLS: --tls-cert, --tls-key and --tls-ca (together) serve the API, the
cluster plane and Raft over TLS 1.3. The certificate is a node certificate
of the cluster's CA naming --node-id (make them with meridian tls; see
docs/PKI.md). The cluster plane and Raft admit only node certificates of
the cluster's trust domain, and a join only from the node its certificate
names; the API verifies a client certificate when one is presented (a
caller without one is anonymous). Certificate files are reloaded when they
change and on SIGHUP, without a restart. The metrics endpoint stays
plaintext. Without TLS files the server refuses to start unless
--insecure, which serves everything but gossip in plaintext: only for
tests and trusted networks.`,
		Example: `  # first node of a new cluster
  MERIDIAN_HSM_PASSPHRASE=... meridian server --bootstrap \
    --node-id n1 --region us-east --data-dir /var/lib/meridian \
    --tls-cert /etc/meridian/tls/node-n1.pem --tls-key /etc/meridian/tls/node-n1-key.pem \
    --tls-ca /etc/meridian/tls/ca.pem \
    --api-addr 10.0.0.1:7400 --raft-addr 10.0.0.1:7401 --metrics-addr 10.0.0.1:7402 \
    --cluster-addr 10.0.0.1:7404

  # a further node, joining through n1's cluster address
  meridian server --config /etc/meridian/n2.yaml --join 10.0.0.1:7404`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, v) },
	}
	fs := cmd.Flags()
	fs.String("config", "", "read options from this YAML, JSON or TOML `FILE`")
	defaults := settings.Defaults()
	settings.Register(fs, &defaults) // every node option, from the one table
	fs.Bool("insecure", false, "allow serving plaintext gRPC (API and cluster plane) and Raft when no --tls-* files are given (tests, trusted networks only)")
	fs.Bool("chaos", false, chaosFlagHelp)
	fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.String("log-format", "text", "log format: text or json")
	return cmd
}

// loadServerOptions merges flags, MERIDIAN_* environment variables and the
// config file, in that order of precedence.
func loadServerOptions(cmd *cobra.Command, v *viper.Viper) error {
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return err
	}
	v.SetEnvPrefix("MERIDIAN")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if file := v.GetString("config"); file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return usageErrorf("read config file %s: %v", file, err)
		}
		for _, k := range v.AllKeys() {
			if cmd.Flags().Lookup(k) == nil {
				return usageErrorf("config file %s: unknown option %q", file, k)
			}
		}
	}
	return nil
}

func runServer(cmd *cobra.Command, v *viper.Viper) error {
	if err := loadServerOptions(cmd, v); err != nil {
		return err
	}
	// Before the rest of the configuration: without TLS nothing else
	// matters, and the operator should hear that first. Half a TLS
	// configuration passes here and is refused by the node's validation,
	// naming the missing flag.
	tlsGiven := v.GetString("tls-cert") != "" || v.GetString("tls-key") != "" || v.GetString("tls-ca") != ""
	insecure := v.GetBool("insecure")
	if !tlsGiven && !insecure {
		return usageErrorf("refusing to serve without TLS: key material requests, node-to-node calls and Raft traffic " +
			"would cross the network in plaintext; pass --tls-cert, --tls-key and --tls-ca (see docs/PKI.md), " +
			"or --insecure to accept plaintext on a trusted network")
	}
	logger, err := newLogger(cmd.ErrOrStderr(), v.GetString("log-level"), v.GetString("log-format"))
	if err != nil {
		return usageError{err}
	}
	cfg, err := serverConfig(v)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	bi := buildinfo.Read()
	logger.Info("meridian server starting", "version", bi.Version, "revision", bi.Revision, "go", bi.GoVersion)
	switch {
	case !tlsGiven:
		logger.Warn("INSECURE: serving the API, the cluster plane and Raft in plaintext (--insecure); " +
			"anyone on the network can read key material requests and join this cluster")
	case insecure:
		logger.Warn("--insecure has no effect: TLS is configured")
	}
	n, err := node.Start(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	reloading := reloadTLSOnHUP(cmd.Context(), n)
	fmt.Fprintf(cmd.OutOrStdout(), "meridian node %s serving: api %s, cluster %s, metrics %s, tls %s\n", n.ID(),
		advertised(n.APIAddr(), cfg.AdvertiseAPIAddr), advertised(n.ClusterAddr(), cfg.AdvertiseClusterAddr), n.MetricsAddr(),
		onOff(n.TLS() != nil))
	<-cmd.Context().Done()
	logger.Info("shutting down")
	<-reloading
	return n.Close()
}

// reloadTLSOnHUP reloads the node's certificate, key and CA bundle on
// SIGHUP (as well as on file changes, which the node watches itself), for
// file systems without change events and for operators who want a reload
// now. Without TLS, SIGHUP keeps its default meaning. The returned channel
// closes once the loop has stopped, after ctx ends.
func reloadTLSOnHUP(ctx context.Context, n *node.Node) <-chan struct{} {
	done := make(chan struct{})
	src := n.TLS()
	if src == nil {
		close(done)
		return done
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		_ = src.ReloadOn(ctx, hup) // logs each failed reload; returns when ctx ends
	}()
	return done
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// advertised is a bound address with the one other hosts are told, when
// that differs: an operator bound to 0.0.0.0 needs to see what clients
// and peers will dial.
func advertised(bound, adv string) string {
	if adv == "" || adv == bound {
		return bound
	}
	return bound + " (advertised " + adv + ")"
}

// chaosFlagHelp is the help of --chaos, on `server` and `demo` alike.
// (No backquotes: pflag shows a backquoted word as the flag's value name.)
const chaosFlagHelp = "advertise that this cluster may be disrupted by meridian chaos run (game days, test clusters)"

// nodeBuildVersion is the build version a node advertises in gossip. With
// chaos it carries chaos.ChaosMarker: `meridian chaos run --harness
// remote` refuses a cluster whose nodes do not all carry it.
func nodeBuildVersion(chaosEnabled bool) string {
	if chaosEnabled {
		return buildinfo.Version() + chaos.ChaosMarker
	}
	return buildinfo.Version()
}

// serverConfig turns the merged options into a node.Config: each setting
// of the table (node/settings) from viper's merge, parsed by its flag's
// own parser, then the secrets and node.Config.Validate.
func serverConfig(v *viper.Viper) (node.Config, error) {
	opts, err := settings.Load(func(name string) (string, string, bool) {
		if !v.IsSet(name) {
			return "", "", false
		}
		from := "--" + name
		if env := settings.EnvName(name); strings.TrimSpace(os.Getenv(env)) != "" {
			from = env // the flag parsed already; a bad value came from here
		} else if v.InConfig(name) {
			from = name + " in " + v.ConfigFileUsed()
		}
		return viperString(v.Get(name)), from, true
	})
	if err != nil {
		return node.Config{}, usageError{err}
	}
	opts.Node.BuildVersion = nodeBuildVersion(v.GetBool("chaos"))
	cfg, err := settings.Resolve(opts)
	if err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// viperString renders a merged value for its flag's parser: a list (a
// YAML sequence, a flag's slice) comma-separated, anything else as text.
func viperString(x any) string {
	switch x := x.(type) {
	case []string:
		return strings.Join(x, ",")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(x)
}

// readPassphrase takes the soft HSM passphrase from a file or the
// environment.
func readPassphrase(file string) ([]byte, error) {
	b, err := settings.ReadPassphrase(file, "hsm-passphrase-file")
	if err != nil {
		return nil, usageError{err}
	}
	return b, nil
}

// newLogger builds the process logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("--log-format " + format + ": want text or json")
}
