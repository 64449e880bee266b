// Package node is Meridian's one wiring: it builds a whole node (HSM, fsm,
// cluster, keystore, gRPC and metrics servers) from a Config. The binary's
// `server` and `demo` commands and every multi-node test use it, so tests run
// what users run.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meridiankms/meridian/buildinfo"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/hsm"
)

// Config describes one node. Zero values take the defaults of DefaultConfig.
type Config struct {
	// NodeID names the node in Raft and in logs; stable across restarts.
	NodeID string
	// Region and Zone place the node: autopilot spreads voters over
	// regions, then zones, and clients prefer their own region.
	Region, Zone string
	// DataDir holds the Raft log, snapshots and (soft backend) the sealed
	// domain-key file.
	DataDir string

	// Every listener has a bind address (what the node listens on) and,
	// apart from metrics, an advertise address (what others are told).
	// An advertise address defaults to the bound one; a bind address with
	// an unspecified host (0.0.0.0, [::] or none, as containers use) says
	// nothing about where the node can be reached, so it needs its
	// advertise address (Validate refuses it without one). Advertised API
	// and cluster addresses are kept as given: a host name there is
	// resolved by whoever dials, at every dial. Raft and gossip need IP
	// addresses, so a host name there is resolved at every start, never
	// stored resolved in this node's own state; the leader updates Raft's
	// configuration and the node's registration when a restarted node
	// advertises new addresses (see cluster's address reconciliation).

	// APIAddr is the client API's gRPC listen address: KeyManagement,
	// Operator, health. Nothing node-to-node is served there.
	APIAddr string
	// AdvertiseAPIAddr is the API address clients are told (Members);
	// defaults to the listener's address.
	AdvertiseAPIAddr string
	// ClusterAddr is the cluster plane's gRPC listen address: node-to-node
	// calls only (forwarded writes, joins, autopilot status polls,
	// domain-key peer calls), kept off the client API so that a firewall
	// can admit only other nodes (and, with TLS, only node certificates
	// pass it).
	ClusterAddr string
	// AdvertiseClusterAddr is the cluster address other nodes use; defaults
	// to the listener's address.
	AdvertiseClusterAddr string
	// ClusterListener, when set, is the cluster plane's listener, used
	// instead of listening on ClusterAddr: tests hand a node a listener
	// they opened on port 0 rather than reserving a port and releasing it.
	// The node owns it and closes it on Close.
	ClusterListener net.Listener
	// RaftAddr is the Raft TCP bind address.
	RaftAddr string
	// AdvertiseRaftAddr is the Raft address other nodes dial; defaults to
	// the bound address. A host name is resolved at every start.
	AdvertiseRaftAddr string
	// MetricsAddr serves /metrics, /healthz and /readyz; empty disables it.
	MetricsAddr string

	// GossipAddr is the memberlist bind address (TCP and UDP); empty turns
	// gossip and autopilot off (joins then add voters directly).
	GossipAddr string
	// AdvertiseGossipAddr is advertised instead of the bound address. A
	// host name is resolved at every start (memberlist needs an IP).
	AdvertiseGossipAddr string
	// GossipKey is the 32-byte key that encrypts gossip; required with
	// gossip unless GossipInsecure. Never logged.
	GossipKey []byte
	// GossipInsecure allows unencrypted gossip (demo and tests only).
	GossipInsecure bool
	// GossipLAN uses fast LAN probe timings instead of the WAN profile.
	GossipLAN bool
	// GossipSeeds are gossip addresses joined at start-up (optional: a Join,
	// served by the cluster plane, learns them from the leader).
	GossipSeeds []string

	// Autopilot settings; zero values keep the cluster defaults (5 voters,
	// 1 m dead-server grace, 10 s stabilization, no preferred region).
	TargetVoters          int
	DeadServerGrace       time.Duration
	StabilizationTime     time.Duration
	PreferredLeaderRegion string

	// WANRTT, when set, derives the Raft timeouts from the worst
	// inter-region round trip (cluster.WANTimings); explicit timeouts win.
	WANRTT time.Duration

	// Sim, when set, delays and faults this node's node-to-node traffic
	// (Raft, cluster-plane gRPC, gossip) by region pair: the demo's and
	// tests' stand-in for a WAN.
	Sim *netsim.Sim

	// HSMWrapper, when set, wraps the opened HSM before anything uses it:
	// the seam through which tests and the chaos harness inject HSM faults.
	HSMWrapper func(hsm.HSM) hsm.HSM

	// BuildVersion is advertised to other nodes (gossip metadata, Members).
	// Empty: buildinfo.Version(), the version of the running binary.
	BuildVersion string

	// Bootstrap makes this node found a new cluster when it has no state.
	Bootstrap bool
	// Join lists cluster addresses (each member's ClusterAddr, advertised)
	// of members to join through; the join is served by the cluster plane
	// only.
	Join []string

	// HSM selects and configures the node's HSM.
	HSM HSMConfig

	// TLS, when its files are set, serves every gRPC listener and the Raft
	// transport over TLS 1.3 and dials every peer with mutual TLS; unset,
	// everything but gossip is plaintext (only for --insecure).
	TLS TLSConfig

	// Raft timings; zero keeps the cluster package's LAN defaults (or what
	// WANRTT derives).
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is the number of log entries between snapshots
	// (zero keeps the cluster default).
	SnapshotThreshold uint64
	// TrailingLogs is how many log entries survive a snapshot (zero keeps
	// the cluster default); a node further behind catches up by snapshot.
	TrailingLogs uint64

	// SchedulerInterval is how often the leader looks for due deletions and
	// rotations (zero keeps the keystore default).
	SchedulerInterval time.Duration

	// ConsistencyMaxWait bounds how long a request carrying a consistency
	// token waits for this replica to catch up before answering Unavailable
	// (zero: transport's default, 2 s).
	ConsistencyMaxWait time.Duration

	// Logger receives the node's structured logs (nil: discard).
	Logger *slog.Logger
}

// HSMConfig selects the node's HSM backend.
type HSMConfig struct {
	// Backend is "soft" (the embedded default) or "pkcs11".
	Backend string
	// SoftPath is the sealed domain-key file (default DataDir/hsm/domain.sealed).
	SoftPath string
	// Passphrase opens the sealed file. Never logged.
	Passphrase []byte
	// CreateIfMissing lets a bootstrapping node make a new domain key
	// (soft: a new sealed file; pkcs11: DK version 1 in the token). A
	// joining node instead starts without one and is enrolled by the
	// cluster when it joins.
	CreateIfMissing bool
	// FastKDF lowers the passphrase KDF cost; for tests and the demo only.
	FastKDF bool

	// PKCS#11: the module, the token (by label: slot ids are not stable)
	// and its user PIN (read from a file or the environment by the
	// caller; never logged).
	ModulePath  string
	TokenLabel  string
	PIN         string
	MaxSessions int
}

// TLSConfig names the node's TLS material. One certificate, a node
// certificate of the cluster CA naming this node
// (spiffe://TRUST-DOMAIN/node/NODE-ID, serverAuth and clientAuth), serves
// the client API and the cluster plane and is presented on every
// node-to-node dial. The files are reloaded when they change (and on
// SIGHUP in `meridian server`), so certificates rotate without a restart.
type TLSConfig struct {
	// CertFile is the node's certificate (PEM, leaf first, then any
	// intermediates).
	CertFile string
	// KeyFile is its private key (PEM). Never logged.
	KeyFile string
	// CAFile is the CA bundle (PEM) every peer and client certificate must
	// chain to; during a CA rotation it holds the old and the new CA.
	CAFile string
	// TrustDomain is the cluster's SPIFFE trust domain; empty: the one the
	// node's certificate names.
	TrustDomain string
}

// Enabled reports whether any TLS file is set: TLS is then on, and
// Validate requires all three.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// validate names the missing file's flag: half a TLS configuration is a
// mistake to report, never a reason to fall back to plaintext.
func (t TLSConfig) validate() error {
	if !t.Enabled() {
		if t.TrustDomain != "" {
			return fmt.Errorf("%w: --tls-trust-domain is set without --tls-cert, --tls-key and --tls-ca", ErrConfig)
		}
		return nil
	}
	for _, f := range []struct{ v, flag, what string }{
		{t.CertFile, "tls-cert", "the node's certificate"},
		{t.KeyFile, "tls-key", "the certificate's private key"},
		{t.CAFile, "tls-ca", "the cluster's CA bundle"},
	} {
		if f.v == "" {
			return fmt.Errorf("%w: TLS is configured but --%s (%s) is missing: set --tls-cert, --tls-key and --tls-ca together", ErrConfig, f.flag, f.what)
		}
	}
	return nil
}

// DefaultConfig returns a single-node configuration on loopback ports:
// 7400 API, 7401 Raft, 7402 metrics, 7404 cluster plane (7403 is gossip's
// when turned on).
func DefaultConfig() Config {
	return Config{
		NodeID:      "node-1",
		Region:      "local",
		Zone:        "a",
		APIAddr:     "127.0.0.1:7400",
		RaftAddr:    "127.0.0.1:7401",
		MetricsAddr: "127.0.0.1:7402",
		ClusterAddr: "127.0.0.1:7404",
		HSM:         HSMConfig{Backend: "soft"},
	}
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("invalid node config")

// Validate checks the config and fills derived defaults.
func (c *Config) Validate() error {
	if c.NodeID == "" {
		return fmt.Errorf("%w: node id is empty", ErrConfig)
	}
	if c.BuildVersion == "" {
		c.BuildVersion = buildinfo.Version()
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data dir is empty", ErrConfig)
	}
	if c.APIAddr == "" || c.RaftAddr == "" {
		return fmt.Errorf("%w: api and raft addresses are required", ErrConfig)
	}
	if c.ClusterAddr == "" && c.ClusterListener == nil {
		return fmt.Errorf("%w: the cluster address is required: node-to-node calls have a listener of their own, apart from the api", ErrConfig)
	}
	if err := c.validateAdvertise(); err != nil {
		return err
	}
	if c.GossipAddr != "" && !c.GossipInsecure && len(c.GossipKey) != 32 {
		return fmt.Errorf("%w: gossip needs a 32-byte key (got %d bytes); generate one with `meridian operator gossip-keygen`", ErrConfig, len(c.GossipKey))
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if c.Bootstrap && len(c.Join) > 0 {
		return fmt.Errorf("%w: --bootstrap and --join are exclusive: a node either founds a cluster or joins one", ErrConfig)
	}
	switch c.HSM.Backend {
	case "", "soft":
		c.HSM.Backend = "soft"
		if c.HSM.SoftPath == "" {
			c.HSM.SoftPath = filepath.Join(c.DataDir, "hsm", "domain.sealed")
		}
		if len(c.HSM.Passphrase) == 0 {
			return fmt.Errorf("%w: the soft HSM needs a passphrase (MERIDIAN_HSM_PASSPHRASE or --hsm-passphrase-file)", ErrConfig)
		}
	case "pkcs11":
		if c.HSM.ModulePath == "" || c.HSM.TokenLabel == "" {
			return fmt.Errorf("%w: the pkcs11 HSM needs a module path and a token label", ErrConfig)
		}
		if c.HSM.PIN == "" {
			return fmt.Errorf("%w: the pkcs11 HSM needs the token's user PIN (MERIDIAN_HSM_PIN or --hsm-pin-file)", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: unknown hsm backend %q (want soft or pkcs11)", ErrConfig, c.HSM.Backend)
	}
	return nil
}

// validateAdvertise refuses a listener bound to every interface whose
// advertise address is missing, and an advertise address that is not
// host:port with a host and a non-zero port: either would tell other
// nodes and clients an address nobody can dial.
func (c *Config) validateAdvertise() error {
	for _, l := range []struct{ bind, advertise, bindFlag, advFlag string }{
		{c.APIAddr, c.AdvertiseAPIAddr, "api-addr", "advertise-api-addr"},
		{c.ClusterAddr, c.AdvertiseClusterAddr, "cluster-addr", "advertise-cluster-addr"},
		{c.RaftAddr, c.AdvertiseRaftAddr, "raft-addr", "advertise-raft-addr"},
		{c.GossipAddr, c.AdvertiseGossipAddr, "gossip-addr", "advertise-gossip-addr"},
	} {
		if l.advertise != "" {
			if err := checkAdvertise(l.advertise); err != nil {
				return fmt.Errorf("%w: --%s %q: %v", ErrConfig, l.advFlag, l.advertise, err)
			}
			continue
		}
		if l.bind != "" && UnspecifiedHost(l.bind) {
			return fmt.Errorf("%w: --%s %s binds every interface, which is no address to advertise: "+
				"set --%s to the HOST:PORT other nodes and clients should dial", ErrConfig, l.bindFlag, l.bind, l.advFlag)
		}
	}
	return nil
}

// UnspecifiedHost reports whether addr (host:port) binds every interface:
// its host is empty, 0.0.0.0 or ::.
func UnspecifiedHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // a malformed address is refused where it is used
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// checkAdvertise checks that addr names a host and a non-zero port.
func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || UnspecifiedHost(addr) {
		return errors.New("an advertise address needs a host that others can dial")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}
