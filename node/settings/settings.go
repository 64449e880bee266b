// Package settings declares every option of `meridian server` once: its
// flag, its MERIDIAN_* environment variable, its config-file key, its
// default, its help and the node.Config field it fills. The server's
// flags, the merge of flags, environment and --config file, the
// command lines the multi-process harness builds and docs/CONFIG.md are
// all derived from the one table here; node.Start derives the cluster,
// transport and HSM configs from the resulting node.Config.
package settings

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/keystore"
	"github.com/meridiankms/meridian/node"
)

// Options is what the server's settings fill: the node's Config and the
// files its secrets are read from (secrets themselves are never flag
// values: flags show in ps).
type Options struct {
	Node node.Config
	// HSMPassphraseFile, HSMPINFile and GossipKeyFile name files holding
	// the soft HSM passphrase, the PKCS#11 user PIN and the base64 gossip
	// key; each falls back to its environment variable (EnvHSMPassphrase,
	// EnvHSMPIN, EnvGossipKey).
	HSMPassphraseFile, HSMPINFile, GossipKeyFile string
}

// Setting is one option. Its flag is --Name, its environment variable
// EnvName(Name), its config-file key Name; its default is the field's
// value in Defaults().
type Setting struct {
	Name string
	// Help is the flag's usage line (a `WORD` in backquotes names the
	// value in --help).
	Help string
	// Required settings have no usable default.
	Required bool
	// Deprecated, when set, hides the flag and says what replaces it.
	Deprecated string
	// field returns the option the setting fills.
	field func(*Options) any
}

// EnvName is the environment variable of a setting: MERIDIAN_ and the
// name in upper case, dashes as underscores (data-dir: MERIDIAN_DATA_DIR).
func EnvName(name string) string {
	return "MERIDIAN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Defaults is the server's defaults: node.DefaultConfig with gossip on
// (7403) and no node id (the host name is used when none is given).
func Defaults() Options {
	c := node.DefaultConfig()
	c.NodeID = ""
	c.GossipAddr = "127.0.0.1:7403"
	return Options{Node: c}
}

// All returns the settings in --help order.
func All() []Setting { return slices.Clone(table) }

var (
	clusterDefaults   = cluster.DefaultConfig()
	autopilotDefaults = cluster.DefaultAutopilotConfig()
)

func nc(f func(*node.Config) any) func(*Options) any {
	return func(o *Options) any { return f(&o.Node) }
}

var table = []Setting{
	{Name: "node-id", Help: "this node's stable id (default: the host name)", field: nc(func(c *node.Config) any { return &c.NodeID })},
	{Name: "region", Help: "region label of this node", field: nc(func(c *node.Config) any { return &c.Region })},
	{Name: "zone", Help: "zone label of this node", field: nc(func(c *node.Config) any { return &c.Zone })},
	{Name: "data-dir", Required: true, Help: "directory for the Raft log, snapshots and the soft HSM file (required)",
		field: nc(func(c *node.Config) any { return &c.DataDir })},

	{Name: "api-addr", Help: "client gRPC API bind `HOST:PORT` (0.0.0.0 or [::] binds every interface and needs --advertise-api-addr)",
		field: nc(func(c *node.Config) any { return &c.APIAddr })},
	{Name: "advertise-api-addr", Help: "API `HOST:PORT` clients are told in the member list (default: the bound address); a host name is kept as a name",
		field: nc(func(c *node.Config) any { return &c.AdvertiseAPIAddr })},
	{Name: "cluster-addr", Help: "cluster plane bind `HOST:PORT`: node-to-node gRPC only (forwarding, joins, status, domain-key exchange); keep it reachable by other nodes only",
		field: nc(func(c *node.Config) any { return &c.ClusterAddr })},
	{Name: "advertise-cluster-addr", Help: "cluster `HOST:PORT` other nodes use to reach this one (default: the bound address); a host name is kept as a name",
		field: nc(func(c *node.Config) any { return &c.AdvertiseClusterAddr })},
	{Name: "raft-addr", Help: "Raft bind `HOST:PORT`",
		field: nc(func(c *node.Config) any { return &c.RaftAddr })},
	{Name: "advertise-raft-addr", Help: "Raft `HOST:PORT` other nodes use (default: the bound address); a host name is resolved at every start",
		field: nc(func(c *node.Config) any { return &c.AdvertiseRaftAddr })},
	{Name: "metrics-addr", Help: "/metrics, /healthz and /readyz bind `HOST:PORT`; empty disables",
		field: nc(func(c *node.Config) any { return &c.MetricsAddr })},
	{Name: "gossip-addr", Help: "memberlist gossip bind `HOST:PORT` (TCP and UDP); empty turns gossip and autopilot off",
		field: nc(func(c *node.Config) any { return &c.GossipAddr })},
	{Name: "gossip-advertise-addr", Deprecated: "use --advertise-gossip-addr",
		Help: "gossip address other nodes use", field: nc(func(c *node.Config) any { return &c.AdvertiseGossipAddr })},
	{Name: "advertise-gossip-addr", Help: "gossip `HOST:PORT` other nodes use (default: the bound address); a host name is resolved at every start",
		field: nc(func(c *node.Config) any { return &c.AdvertiseGossipAddr })},
	{Name: "gossip-key-file", Help: "read the base64 32-byte gossip encryption key from this `FILE` (or set " + EnvGossipKey + ")",
		field: func(o *Options) any { return &o.GossipKeyFile }},
	{Name: "gossip-insecure", Help: "gossip unencrypted (only for a trusted test network)",
		field: nc(func(c *node.Config) any { return &c.GossipInsecure })},
	{Name: "join-gossip", Help: "gossip `ADDRS` to join at start-up (optional: --join learns them from the leader)",
		field: nc(func(c *node.Config) any { return &c.GossipSeeds })},

	{Name: "target-voters", Help: fmt.Sprintf("Raft voters autopilot keeps, spread over regions (odd; 0: %d)", autopilotDefaults.TargetVoters),
		field: nc(func(c *node.Config) any { return &c.TargetVoters })},
	{Name: "dead-server-grace", Help: fmt.Sprintf("how long a node must be dead before autopilot removes it (0: %v)", autopilotDefaults.DeadServerGrace),
		field: nc(func(c *node.Config) any { return &c.DeadServerGrace })},
	{Name: "preferred-leader-region", Help: "region that gets Raft leadership back when it has a healthy voter",
		field: nc(func(c *node.Config) any { return &c.PreferredLeaderRegion })},
	{Name: "wan-rtt", Help: "worst inter-region round trip; derives Raft timeouts (5x RTT, at least 400ms) unless set explicitly",
		field: nc(func(c *node.Config) any { return &c.WANRTT })},
	{Name: "bootstrap", Help: "found a new cluster with this node if it has no Raft state",
		field: nc(func(c *node.Config) any { return &c.Bootstrap })},
	{Name: "join", Help: "cluster `ADDRS` (--cluster-addr, not the API address) of members to join through (repeatable)",
		field: nc(func(c *node.Config) any { return &c.Join })},

	{Name: "tls-cert", Help: "this node's certificate `FILE` (PEM; a node certificate of the cluster CA naming --node-id): turns TLS on for the API, the cluster plane and Raft, with --tls-key and --tls-ca",
		field: nc(func(c *node.Config) any { return &c.TLS.CertFile })},
	{Name: "tls-key", Help: "the private key `FILE` of --tls-cert (PEM, owner-only)",
		field: nc(func(c *node.Config) any { return &c.TLS.KeyFile })},
	{Name: "tls-ca", Help: "CA bundle `FILE` (PEM) that peer and client certificates must chain to; during a CA rotation it holds both CAs",
		field: nc(func(c *node.Config) any { return &c.TLS.CAFile })},
	{Name: "tls-trust-domain", Help: "the cluster's SPIFFE trust `DOMAIN` node certificates must name (default: the one --tls-cert names)",
		field: nc(func(c *node.Config) any { return &c.TLS.TrustDomain })},

	{Name: "hsm", Help: "HSM backend: soft or pkcs11", field: nc(func(c *node.Config) any { return &c.HSM.Backend })},
	{Name: "hsm-module", Help: "pkcs11: the PKCS#11 module `PATH` (e.g. /usr/lib/softhsm/libsofthsm2.so)",
		field: nc(func(c *node.Config) any { return &c.HSM.ModulePath })},
	{Name: "hsm-token-label", Help: "pkcs11: the token's `LABEL` (slot ids are not stable; labels are)",
		field: nc(func(c *node.Config) any { return &c.HSM.TokenLabel })},
	{Name: "hsm-pin-file", Help: "pkcs11: read the token's user PIN from this `FILE`, owner-only (mode 0600; or set " + EnvHSMPIN + ")",
		field: func(o *Options) any { return &o.HSMPINFile }},
	{Name: "hsm-max-sessions", Help: "pkcs11: cap on concurrent token sessions (0: the token's limit, at most 16)",
		field: nc(func(c *node.Config) any { return &c.HSM.MaxSessions })},
	{Name: "hsm-soft-path", Help: "sealed domain-key file of the soft HSM (default: DATA_DIR/hsm/domain.sealed)",
		field: nc(func(c *node.Config) any { return &c.HSM.SoftPath })},
	{Name: "hsm-passphrase-file", Help: "read the soft HSM passphrase from this `FILE` (or set " + EnvHSMPassphrase + ")",
		field: func(o *Options) any { return &o.HSMPassphraseFile }},
	{Name: "hsm-create", Help: "create the domain key if the sealed file is missing (always on with --bootstrap)",
		field: nc(func(c *node.Config) any { return &c.HSM.CreateIfMissing })},

	{Name: "raft-heartbeat-timeout", Help: fmt.Sprintf("Raft heartbeat timeout (0: %v, or derived from --wan-rtt)", clusterDefaults.HeartbeatTimeout),
		field: nc(func(c *node.Config) any { return &c.HeartbeatTimeout })},
	{Name: "raft-election-timeout", Help: fmt.Sprintf("Raft election timeout (0: %v, or derived from --wan-rtt)", clusterDefaults.ElectionTimeout),
		field: nc(func(c *node.Config) any { return &c.ElectionTimeout })},
	{Name: "raft-leader-lease-timeout", Help: fmt.Sprintf("Raft leader lease timeout (0: %v, or derived from --wan-rtt)", clusterDefaults.LeaderLeaseTimeout),
		field: nc(func(c *node.Config) any { return &c.LeaderLeaseTimeout })},
	{Name: "snapshot-threshold", Help: fmt.Sprintf("Raft log entries between snapshots (0: %d)", clusterDefaults.SnapshotThreshold),
		field: nc(func(c *node.Config) any { return &c.SnapshotThreshold })},
	{Name: "scheduler-interval", Help: fmt.Sprintf("how often the leader runs due deletions and rotations (0: %v)", keystore.DefaultConfig().SchedulerInterval),
		field: nc(func(c *node.Config) any { return &c.SchedulerInterval })},
}

// Register adds a flag for every setting to fs, bound to o's fields, with
// the field's current value as the flag's default (pass Defaults()).
func Register(fs *pflag.FlagSet, o *Options) {
	for _, s := range table {
		switch p := s.field(o).(type) {
		case *string:
			fs.StringVar(p, s.Name, *p, s.Help)
		case *bool:
			fs.BoolVar(p, s.Name, *p, s.Help)
		case *int:
			fs.IntVar(p, s.Name, *p, s.Help)
		case *uint64:
			fs.Uint64Var(p, s.Name, *p, s.Help)
		case *time.Duration:
			fs.DurationVar(p, s.Name, *p, s.Help)
		case *[]string:
			fs.StringSliceVar(p, s.Name, *p, s.Help)
		default:
			panic(fmt.Sprintf("settings: %s: unsupported type %T", s.Name, p))
		}
		if s.Deprecated != "" {
			_ = fs.MarkDeprecated(s.Name, s.Deprecated)
		}
	}
}

// Source gives, for one setting, the value merged from the flag, the
// environment and the config file (in that order of precedence) and
// where it came from ("--data-dir", "MERIDIAN_DATA_DIR", "data-dir in
// FILE"); ok is false when none gave it.
type Source func(name string) (value string, from string, ok bool)

// ErrInvalid marks a setting whose value does not parse, or a required
// one that is missing.
var ErrInvalid = errors.New("invalid setting")

// Load builds Options from Defaults and the values src gives, each parsed
// by its flag's own parser, so a bad value in the environment or the
// config file is refused as the flag would refuse it, naming its source.
func Load(src Source) (Options, error) {
	o := Defaults()
	fs := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	Register(fs, &o)
	for _, s := range table {
		val, from, ok := src(s.Name)
		if !ok {
			if s.Required {
				return o, fmt.Errorf("%w: --%s is required (or %s, or %s in --config)", ErrInvalid, s.Name, EnvName(s.Name), s.Name)
			}
			continue
		}
		if err := fs.Lookup(s.Name).Value.Set(val); err != nil {
			return o, fmt.Errorf("%w: %s=%q: not a valid --%s (%s): %v", ErrInvalid, from, val, s.Name, fs.Lookup(s.Name).Value.Type(), err)
		}
	}
	return o, nil
}

// Args renders o as `meridian server` flags: one --name=value for every
// setting whose value differs from Defaults(). Secrets are never in o and
// so never in the result. It is how the multi-process harness starts
// nodes through the same settings as users.
func Args(o Options) []string {
	def := Defaults()
	var args []string
	for _, s := range table {
		if s.Deprecated != "" {
			continue
		}
		v, d := format(s.field(&o)), format(s.field(&def))
		if v != d {
			args = append(args, "--"+s.Name+"="+v)
		}
	}
	return args
}

func format(p any) string {
	switch p := p.(type) {
	case *[]string:
		return strings.Join(*p, ",")
	case *string:
		return *p
	case *time.Duration:
		return p.String()
	}
	return fmt.Sprint(reflectDeref(p))
}

func reflectDeref(p any) any {
	switch p := p.(type) {
	case *bool:
		return *p
	case *int:
		return *p
	case *uint64:
		return *p
	}
	panic(fmt.Sprintf("settings: unsupported type %T", p))
}
