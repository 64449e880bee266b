package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/meridiankms/meridian/buildinfo"
	"github.com/meridiankms/meridian/chaos"
	"github.com/meridiankms/meridian/node"
)

// envPassphrase names the environment variable that carries the soft HSM
// passphrase. It is deliberately not a flag: flag values show up in ps.
const envPassphrase = "MERIDIAN_HSM_PASSPHRASE"

// envPIN carries the PKCS#11 user PIN, for the same reason.
const envPIN = "MERIDIAN_HSM_PIN"

// envGossipKey carries the base64 gossip encryption key, for the same reason.
const envGossipKey = "MERIDIAN_GOSSIP_KEY"

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

TLS is not configured yet: the API and node-to-node traffic (cluster plane
and Raft) are plaintext, so the server refuses to start without --insecure.`,
		Example: `  # first node of a new cluster
  MERIDIAN_HSM_PASSPHRASE=... meridian server --insecure --bootstrap \
    --node-id n1 --region us-east --data-dir /var/lib/meridian \
    --api-addr 10.0.0.1:7400 --raft-addr 10.0.0.1:7401 --metrics-addr 10.0.0.1:7402 \
    --cluster-addr 10.0.0.1:7404

  # a further node, joining through n1's cluster address
  meridian server --config /etc/meridian/n2.yaml --join 10.0.0.1:7404`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, v) },
	}
	fs := cmd.Flags()
	fs.String("config", "", "read options from this YAML, JSON or TOML `FILE`")
	fs.String("node-id", "", "this node's stable id (default: the host name)")
	fs.String("region", "local", "region label of this node")
	fs.String("zone", "a", "zone label of this node")
	fs.String("data-dir", "", "directory for the Raft log, snapshots and the soft HSM file (required)")
	fs.String("api-addr", "127.0.0.1:7400", "client gRPC API listen `HOST:PORT`")
	fs.String("advertise-api-addr", "", "API address clients are told in the member list (default: the listen address)")
	fs.String("cluster-addr", "127.0.0.1:7404", "cluster plane listen `HOST:PORT`: node-to-node gRPC only (forwarding, joins, status, domain-key exchange); keep it reachable by other nodes only")
	fs.String("advertise-cluster-addr", "", "cluster address other nodes use to reach this one (default: the listen address)")
	fs.String("raft-addr", "127.0.0.1:7401", "Raft listen and advertised `HOST:PORT`")
	fs.String("metrics-addr", "127.0.0.1:7402", "/metrics, /healthz and /readyz `HOST:PORT`; empty disables")
	fs.String("gossip-addr", "127.0.0.1:7403", "memberlist gossip `HOST:PORT` (TCP and UDP); empty turns gossip and autopilot off")
	fs.String("gossip-advertise-addr", "", "gossip address other nodes use (default: the bound address)")
	fs.String("gossip-key-file", "", "read the base64 32-byte gossip encryption key from this `FILE` (or set "+envGossipKey+")")
	fs.Bool("gossip-insecure", false, "gossip unencrypted (only for a trusted test network)")
	fs.StringSlice("join-gossip", nil, "gossip `ADDRS` to join at start-up (optional: --join learns them from the leader)")
	fs.Int("target-voters", 0, "Raft voters autopilot keeps, spread over regions (odd; default 5)")
	fs.Duration("dead-server-grace", 0, "how long a node must be dead before autopilot removes it (default 1m)")
	fs.String("preferred-leader-region", "", "region that gets Raft leadership back when it has a healthy voter")
	fs.Duration("wan-rtt", 0, "worst inter-region round trip; derives Raft timeouts (5x RTT, at least 400ms) unless set explicitly")
	fs.Bool("bootstrap", false, "found a new cluster with this node if it has no Raft state")
	fs.StringSlice("join", nil, "cluster `ADDRS` (--cluster-addr, not the API address) of members to join through (repeatable)")
	fs.String("hsm", "soft", "HSM backend: soft or pkcs11")
	fs.String("hsm-module", "", "pkcs11: the PKCS#11 module `PATH` (e.g. /usr/lib/softhsm/libsofthsm2.so)")
	fs.String("hsm-token-label", "", "pkcs11: the token's `LABEL` (slot ids are not stable; labels are)")
	fs.String("hsm-pin-file", "", "pkcs11: read the token's user PIN from this `FILE`, owner-only (mode 0600; or set "+envPIN+")")
	fs.Int("hsm-max-sessions", 0, "pkcs11: cap on concurrent token sessions (default: the token's limit, at most 16)")
	fs.String("hsm-soft-path", "", "sealed domain-key file of the soft HSM (default: DATA_DIR/hsm/domain.sealed)")
	fs.String("hsm-passphrase-file", "", "read the soft HSM passphrase from this `FILE` (or set "+envPassphrase+")")
	fs.Bool("hsm-create", false, "create the domain key if the sealed file is missing (default: on with --bootstrap)")
	fs.Duration("raft-heartbeat-timeout", 0, "Raft heartbeat timeout (default 400ms)")
	fs.Duration("raft-election-timeout", 0, "Raft election timeout (default 400ms)")
	fs.Duration("raft-leader-lease-timeout", 0, "Raft leader lease timeout (default 200ms)")
	fs.Uint64("snapshot-threshold", 0, "Raft log entries between snapshots (default 8192)")
	fs.Duration("scheduler-interval", 0, "how often the leader runs due deletions and rotations (default 1m)")
	fs.Bool("insecure", false, "serve plaintext gRPC (API and cluster plane) and Raft (required until TLS arrives)")
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
	if !v.GetBool("insecure") {
		return usageErrorf("refusing to serve without TLS: TLS is not configured yet, so key material requests, " +
			"node-to-node calls and Raft traffic would cross the network in plaintext; pass --insecure to accept that on a trusted network")
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
	n, err := node.Start(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "meridian node %s serving: api %s, cluster %s, metrics %s\n", n.ID(), n.APIAddr(), n.ClusterAddr(), n.MetricsAddr())
	<-cmd.Context().Done()
	logger.Info("shutting down")
	return n.Close()
}

// chaosFlagHelp is the help of --chaos, on `server` and `demo` alike.
const chaosFlagHelp = "advertise that this cluster may be disrupted by `meridian chaos run` (game days, test clusters)"

// nodeBuildVersion is the build version a node advertises in gossip. With
// chaos it carries chaos.ChaosMarker: `meridian chaos run --harness
// remote` refuses a cluster whose nodes do not all carry it.
func nodeBuildVersion(chaosEnabled bool) string {
	if chaosEnabled {
		return buildinfo.Version() + chaos.ChaosMarker
	}
	return buildinfo.Version()
}

// serverConfig turns the merged options into a node.Config.
func serverConfig(v *viper.Viper) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.NodeID = v.GetString("node-id")
	if cfg.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return cfg, usageErrorf("--node-id not given and the host name is unknown: %v", err)
		}
		cfg.NodeID = host
	}
	cfg.Region, cfg.Zone = v.GetString("region"), v.GetString("zone")
	cfg.DataDir = v.GetString("data-dir")
	if cfg.DataDir == "" {
		return cfg, usageErrorf("--data-dir is required (or MERIDIAN_DATA_DIR, or data-dir in --config)")
	}
	cfg.APIAddr, cfg.AdvertiseAPIAddr = v.GetString("api-addr"), v.GetString("advertise-api-addr")
	cfg.ClusterAddr, cfg.AdvertiseClusterAddr = v.GetString("cluster-addr"), v.GetString("advertise-cluster-addr")
	cfg.RaftAddr, cfg.MetricsAddr = v.GetString("raft-addr"), v.GetString("metrics-addr")
	cfg.GossipAddr, cfg.GossipAdvertiseAddr = v.GetString("gossip-addr"), v.GetString("gossip-advertise-addr")
	cfg.GossipInsecure, cfg.GossipSeeds = v.GetBool("gossip-insecure"), v.GetStringSlice("join-gossip")
	if cfg.GossipAddr != "" && !cfg.GossipInsecure {
		key, err := readGossipKey(v.GetString("gossip-key-file"))
		if err != nil {
			return cfg, err
		}
		cfg.GossipKey = key
	}
	cfg.TargetVoters = v.GetInt("target-voters")
	cfg.DeadServerGrace = v.GetDuration("dead-server-grace")
	cfg.PreferredLeaderRegion = v.GetString("preferred-leader-region")
	cfg.WANRTT = v.GetDuration("wan-rtt")
	cfg.BuildVersion = nodeBuildVersion(v.GetBool("chaos"))
	cfg.Bootstrap = v.GetBool("bootstrap")
	cfg.Join = v.GetStringSlice("join")
	cfg.HSM.Backend = v.GetString("hsm")
	cfg.HSM.SoftPath = v.GetString("hsm-soft-path")
	cfg.HSM.CreateIfMissing = v.GetBool("hsm-create") || cfg.Bootstrap
	switch cfg.HSM.Backend {
	case "pkcs11":
		cfg.HSM.ModulePath, cfg.HSM.TokenLabel = v.GetString("hsm-module"), v.GetString("hsm-token-label")
		cfg.HSM.MaxSessions = v.GetInt("hsm-max-sessions")
		// readPIN, like the operator commands, refuses a PIN file that
		// group or others can read.
		pin, err := readPIN(v.GetString("hsm-pin-file"), envPIN, "hsm-pin-file", "PKCS#11 token's user PIN")
		if err != nil {
			return cfg, err
		}
		cfg.HSM.PIN = pin
	default:
		pass, err := readPassphrase(v.GetString("hsm-passphrase-file"))
		if err != nil {
			return cfg, err
		}
		cfg.HSM.Passphrase = pass
	}
	cfg.HeartbeatTimeout = v.GetDuration("raft-heartbeat-timeout")
	cfg.ElectionTimeout = v.GetDuration("raft-election-timeout")
	cfg.LeaderLeaseTimeout = v.GetDuration("raft-leader-lease-timeout")
	cfg.SnapshotThreshold = v.GetUint64("snapshot-threshold")
	cfg.SchedulerInterval = v.GetDuration("scheduler-interval")
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// readPassphrase takes the soft HSM passphrase from a file or the
// environment.
func readPassphrase(file string) ([]byte, error) {
	return readSecret(file, envPassphrase, "the soft HSM needs a passphrase", "--hsm-passphrase-file")
}

// readSecret takes a secret from a file (trailing newline trimmed) or an
// environment variable, never a flag value. It never appears in an error.
func readSecret(file, env, what, flag string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErrorf("read %s: %v", flag, err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, usageErrorf("%s %s is empty", flag, file)
		}
		return b, nil
	}
	if p := os.Getenv(env); p != "" {
		return []byte(p), nil
	}
	return nil, usageErrorf("%s: set %s or pass %s", what, env, flag)
}

// readGossipKey reads the base64 gossip key from a file or the
// environment. The key never appears in an error.
func readGossipKey(file string) ([]byte, error) {
	text := os.Getenv(envGossipKey)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErrorf("read --gossip-key-file: %v", err)
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, usageErrorf("gossip is encrypted: set %s or --gossip-key-file (make a key with `meridian operator gossip-keygen`), "+
			"or pass --gossip-insecure on a trusted test network", envGossipKey)
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(key) != 32 {
		return nil, usageErrorf("the gossip key must be 32 bytes, base64-encoded (make one with `meridian operator gossip-keygen`)")
	}
	return key, nil
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
