package cluster

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Config configures one cluster node. Build it from DefaultConfig and set
// NodeID, DataDir, RaftBindAddr, APIAddr and ClusterAddr.
type Config struct {
	// NodeID is this node's stable identity in Raft and in the fsm's member
	// list. It must survive restarts (it is what makes a restart a restart).
	NodeID string
	// Region and Zone label the node; advertised in its registration.
	Region string
	Zone   string

	// DataDir holds raft/raft.db (log and stable store) and raft/snapshots.
	DataDir string

	// RaftBindAddr is the TCP address the Raft transport listens on.
	// "127.0.0.1:0" picks a free port; the advertised address is then the
	// listener's real address (see Node.RaftAddr).
	RaftBindAddr string
	// RaftAdvertiseAddr, if set, is advertised instead of the listener's
	// address (needed when binding 0.0.0.0 or behind NAT).
	RaftAdvertiseAddr string
	// StreamLayer, if set, replaces the TCP listener/dialer of the Raft
	// transport (RaftBindAddr is then ignored). It is the seam for TLS and
	// for simulated WAN latency and partitions in tests.
	StreamLayer raft.StreamLayer
	// RaftTLS, when set, runs the Raft transport over mutual TLS: the
	// stream layer (StreamLayer, or a TCP one on RaftBindAddr) is wrapped so
	// that every connection handshakes with these configurations.
	RaftTLS RaftTLS

	// APIAddr is this node's client API address. It is only recorded and
	// advertised (registration, gossip, Members) for clients to find the
	// node; nothing node-to-node is sent to it.
	APIAddr string
	// ClusterAddr is this node's advertised cluster-plane address: where
	// its node-to-node gRPC services (the Cluster service of Register and
	// the DomainKeys service) are served, on a listener of their own that
	// clients cannot reach. Followers forward writes and joins to the
	// leader's ClusterAddr, autopilot polls it, and joiners name seeds by
	// it. A member that predates the cluster plane registered none; its
	// APIAddr is used instead (it served the Cluster service there).
	ClusterAddr string

	// Bootstrap makes this node form a single-node cluster when its data dir
	// holds no Raft state. Ignored on restart.
	Bootstrap bool
	// NonVoter makes Join ask to be added as a non-voter.
	NonVoter bool

	// Raft timings. The defaults suit a LAN (they are raft's own defaults,
	// the ones Consul runs with raft_multiplier=1): a dead leader is noticed
	// after about HeartbeatTimeout and replaced within ElectionTimeout to
	// twice that. A WAN deployment scales them all by its round-trip time.
	// LeaderLeaseTimeout must not exceed HeartbeatTimeout; it bounds how long
	// a partitioned leader keeps believing it leads.
	HeartbeatTimeout   time.Duration // default 400ms
	ElectionTimeout    time.Duration // default 400ms
	LeaderLeaseTimeout time.Duration // default 200ms
	CommitTimeout      time.Duration // default 50ms

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one (checked every SnapshotInterval, jittered).
	SnapshotThreshold uint64        // default 8192
	SnapshotInterval  time.Duration // default 2m
	// TrailingLogs is how many entries are kept after a snapshot so that a
	// slightly lagging follower catches up from the log, not a snapshot.
	TrailingLogs uint64 // default 10240
	// RetainSnapshots is how many snapshots are kept on disk.
	RetainSnapshots int // default 2

	// ApplyTimeout bounds Apply when the caller's context has no deadline.
	ApplyTimeout time.Duration // default 10s

	// Logger receives the node's logs and, through an hclog adapter, raft's.
	// Nil discards.
	Logger *slog.Logger

	// DialOptions are used for node-to-node gRPC to other members' cluster
	// addresses (forwarding, joins, autopilot status polls, domain-key peer
	// calls). Default: insecure credentials; the node wiring replaces them
	// with mutual TLS credentials when TLS is configured.
	DialOptions []grpc.DialOption

	// PeerNodeID, when set, names the node calling a cluster-plane handler,
	// from its authenticated connection (the wiring reads the verified
	// node certificate; cluster imports no identity code). A join is then
	// accepted only from the node it names (or, forwarded, from a member
	// vouching for it): identity comes from the connection, never from
	// what the request claims. Nil: callers are not authenticated
	// (plaintext, --insecure), and joins are taken at their word.
	PeerNodeID func(ctx context.Context) (string, error)

	// Gossip configures memberlist membership; GossipBindAddr "" turns
	// gossip (and with it autopilot) off, leaving the issue-2 behaviour:
	// joins add voters directly and nothing removes dead servers.
	Gossip GossipConfig
	// Autopilot configures the leader's reconciliation of Raft with gossip.
	Autopilot AutopilotConfig
	// BuildVersion is advertised in gossip metadata.
	BuildVersion string

	// DomainKeys, when set, serves this node's HSM to other members over
	// the cluster plane (the DomainKeys service: which DK versions it
	// holds, export, sync) and lets SyncDomainKeysFrom import into it.
	// Nil: those calls answer FailedPrecondition.
	DomainKeys DomainKeyHolder

	// Enrolment, when set, lets this node enrol a joining node's HSM while
	// it leads: a join carrying a transport public key gets the domain keys
	// wrapped to that key. Nil: joins that ask for them are refused with
	// ErrEnrolmentUnavailable (joins that do not ask work as before).
	Enrolment DomainKeyExporter
}

// DomainKeyExporter is the leader's side of HSM enrolment. cluster cannot
// import hsm (DESIGN.md: cluster imports fsm only), so the node's wiring
// adapts its HSM: wrap every domain-key version to transportPub inside the
// HSM and return the marshalled bundle. The bytes are opaque here; they
// travel to the joiner in its JoinResponse and are never logged.
//
// An error wrapping ErrInvalidTransportKey refuses the join for good (the
// key will not become acceptable by retrying); any other error is treated
// as transient (the leader's HSM may recover or leadership may move) and
// the joiner retries. Either way the node is not added to Raft.
type DomainKeyExporter interface {
	ExportDomainKeys(ctx context.Context, transportPub []byte) ([]byte, error)
}

// GossipConfig configures memberlist.
type GossipConfig struct {
	// BindAddr is the host:port memberlist listens on (TCP and UDP);
	// "127.0.0.1:0" picks a free port. Empty disables gossip.
	BindAddr string
	// AdvertiseAddr, if set, is advertised instead of the bound address.
	AdvertiseAddr string
	// Key is the 32-byte AES-256 key that encrypts and authenticates all
	// gossip. Every member must share it. Required unless Insecure.
	Key []byte
	// Insecure allows gossip in the clear (tests and the local demo only).
	Insecure bool
	// LAN selects fast local timings (100 ms probes, Nomad's test values)
	// instead of memberlist's WAN profile (5 s probes, 3 s probe timeout,
	// 60 s push/pull), which is the default because members span regions.
	LAN bool
	// Seeds are gossip addresses to join at start-up, retried with backoff
	// in the background until one answers. Join (through API seeds) also
	// joins gossip with the addresses the leader returns.
	Seeds []string
	// RTT is the worst round trip expected between members. Probe
	// timeouts are raised to 3 x RTT and the probe interval to twice
	// that (room for an indirect probe through a third region), so that
	// latency alone never looks like a failure; the WAN profile's 3 s
	// already covers real WANs, so this matters for the LAN profile under
	// simulated latency. 0: round trips well under 50 ms.
	RTT time.Duration
	// Transport, if set, builds memberlist's transport instead of its
	// UDP+TCP NetTransport. It is the seam for simulated WAN latency and
	// partitions (netsim's Host.GossipTransport), as Config.StreamLayer
	// is for Raft.
	Transport GossipTransportFunc
}

// GossipTransportFunc builds a memberlist transport listening on bindAddr
// (host:port, port 0 picks one) that logs to logger. The node owns the
// result: memberlist shuts it down when gossip stops, and the node may
// shut it down again if memberlist fails to start, so Shutdown must be
// idempotent.
type GossipTransportFunc func(bindAddr string, logger *log.Logger) (memberlist.NodeAwareTransport, error)

// AutopilotConfig configures the leader's autopilot (see cluster/autopilot).
type AutopilotConfig struct {
	// Disabled turns autopilot off even with gossip on.
	Disabled bool
	// Interval between reconciliations on the leader.
	Interval time.Duration // default 2s
	// TargetVoters is the wanted voter count, odd. Default 5.
	TargetVoters int
	// MaxLagEntries: a non-voter within this many entries of the leader's
	// last index counts as caught up. Default 250.
	MaxLagEntries uint64
	// StabilizationTime a non-voter must be alive before promotion.
	StabilizationTime time.Duration // default 10s
	// DeadServerGrace a server must be DEAD or LEFT before removal.
	DeadServerGrace time.Duration // default 1m
	// PreferredLeaderRegion gets leadership back when it has a healthy,
	// caught-up, stable voter. Empty: no preference.
	PreferredLeaderRegion string
	// TransferHysteresis is the minimum time a leader leads before it is
	// asked to hand leadership to the preferred region. Default 30s.
	TransferHysteresis time.Duration
}

// DefaultAutopilotConfig returns production autopilot settings.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{
		Interval:           2 * time.Second,
		TargetVoters:       5,
		MaxLagEntries:      250,
		StabilizationTime:  10 * time.Second,
		DeadServerGrace:    time.Minute,
		TransferHysteresis: 30 * time.Second,
	}
}

func (c *Config) gossipOn() bool    { return c.Gossip.BindAddr != "" }
func (c *Config) autopilotOn() bool { return c.gossipOn() && !c.Autopilot.Disabled }

// DefaultConfig returns a Config with LAN timings and insecure dialing.
func DefaultConfig() Config {
	return Config{
		RaftBindAddr: "127.0.0.1:0",
		// raft's own 1 s defaults put LAN failover p99 at 2.8-3.0 s (kill
		// -> first committed write); 400 ms keeps it under 1.5 s and is
		// still far above LAN round trips and fsync p99.
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		RetainSnapshots:    2,
		ApplyTimeout:       10 * time.Second,
		DialOptions:        []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Autopilot:          DefaultAutopilotConfig(),
	}
}

// Validate reports the first problem with c, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.NodeID == "":
		return bad("node id is empty")
	case c.DataDir == "":
		return bad("data dir is empty")
	case c.RaftBindAddr == "" && c.StreamLayer == nil:
		return bad("raft bind address is empty")
	case c.APIAddr == "":
		return bad("api address is empty")
	case c.ClusterAddr == "":
		return bad("cluster address is empty")
	case c.ApplyTimeout <= 0:
		return bad("apply timeout %v is not positive", c.ApplyTimeout)
	case len(c.DialOptions) == 0:
		return bad("dial options are empty (need at least transport credentials)")
	case c.RetainSnapshots < 1:
		return bad("retain snapshots %d is below 1", c.RetainSnapshots)
	}
	if err := c.RaftTLS.validate(); err != nil {
		return bad("%v", err)
	}
	if err := c.validateGossip(); err != nil {
		return bad("%v", err)
	}
	if err := raft.ValidateConfig(c.raftConfig()); err != nil {
		return bad("raft: %v", err)
	}
	return nil
}

// raftConfig maps c onto raft's Config; the logger and notify channel are
// set by New.
func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// A removed node must stay up: it may be re-added (e.g. with a new
	// address), and only the operator stops a process.
	rc.ShutdownOnRemove = false
	return rc
}

func (c *Config) validateGossip() error {
	if !c.gossipOn() {
		return nil
	}
	g, a := c.Gossip, c.Autopilot
	if _, _, err := splitHostPort(g.BindAddr); err != nil {
		return fmt.Errorf("gossip bind address: %w", err)
	}
	if g.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(g.AdvertiseAddr); err != nil {
			return fmt.Errorf("gossip advertise address: %w", err)
		}
	}
	switch {
	case len(g.Key) == 0 && !g.Insecure:
		return fmt.Errorf("gossip key is required (or set Gossip.Insecure for tests and demos)")
	case len(g.Key) != 0 && len(g.Key) != 32:
		return fmt.Errorf("gossip key is %d bytes, want 32", len(g.Key))
	case g.RTT < 0:
		return fmt.Errorf("gossip rtt %v is negative", g.RTT)
	case a.Disabled:
		return nil
	case a.Interval <= 0:
		return fmt.Errorf("autopilot interval %v is not positive", a.Interval)
	case a.TargetVoters < 1 || a.TargetVoters%2 == 0:
		return fmt.Errorf("autopilot target voters %d is not a positive odd number", a.TargetVoters)
	case a.StabilizationTime < 0 || a.DeadServerGrace <= 0 || a.TransferHysteresis < 0:
		return fmt.Errorf("autopilot durations must be non-negative (grace positive)")
	}
	return nil
}

// splitHostPort parses host:port with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, int(port), nil
}
