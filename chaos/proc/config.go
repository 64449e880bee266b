package proc

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Errors of the multi-process harness.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("chaos/proc: invalid config")
	// ErrRequirement means the machine lacks something the harness needs
	// (root, ip, iptables); the message says how to get it.
	ErrRequirement = errors.New("chaos/proc: missing requirement")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("chaos/proc: harness closed")
	// ErrBadOutput means a system tool printed something unexpected.
	ErrBadOutput = errors.New("chaos/proc: unexpected tool output")
	// ErrNodeExited means a node process ended on its own (a crash or a
	// refused start); its log is in Harness.LogTail.
	ErrNodeExited = errors.New("chaos/proc: node process exited")
)

// Config describes the cluster the harness starts.
type Config struct {
	// Binary is the meridian executable each node runs (`meridian server`).
	// It must be readable and executable by other users: nodes run under
	// unprivileged per-region uids. BuildBinary makes one.
	Binary string
	// Regions names the regions; region i's node n listens on
	// 127.0.i+1.n+1. At most 254 regions.
	Regions []string
	// NodesPerRegion is the number of nodes in each region (1..254).
	NodesPerRegion int
	// Dir holds the node data dirs and logs. Empty: a new temporary
	// directory, removed by Close. Dir and its parents must be searchable
	// by other users (mode o+x).
	Dir string
	// UIDBase is the first of the uids the regions' processes run under
	// (region i: UIDBase+i); they need no passwd entry. Default 3100000.
	UIDBase int

	// Raft timings passed to every node; zero keeps the harness's LAN
	// defaults (heartbeat and election 500 ms, lease 250 ms), which make
	// failover take about a second.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// DeadServerGrace is passed to every node (default 1 h: a chaos run
	// kills nodes on purpose and restarts them; autopilot must not remove
	// them from the voters meanwhile).
	DeadServerGrace time.Duration
	// TargetVoters is passed to every node (0: the server default, 5).
	TargetVoters int
	// StartTimeout bounds New's wait for the cluster to be formed, and
	// Restart's and Wipe's wait for a node to serve (default 60 s).
	StartTimeout time.Duration
	// BindAny makes every node bind each listener on 0.0.0.0, as a node in
	// a container does, and advertise its own loopback address
	// (--advertise-*-addr): node k (0-based, region by region) uses ports
	// 7400+10*k .. 7404+10*k so that the wildcard binds do not collide.
	BindAny bool
	// ExtraArgs are appended to every node's `meridian server` arguments.
	ExtraArgs []string
	// Logf, when set, receives the harness's own progress lines (t.Logf).
	Logf func(format string, args ...any)
}

var regionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// withDefaults validates c and fills its defaults.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Binary == "":
		return c, fmt.Errorf("%w: no meridian binary (see BuildBinary)", ErrConfig)
	case len(c.Regions) == 0 || len(c.Regions) > 254:
		return c, fmt.Errorf("%w: %d regions: want 1 to 254", ErrConfig, len(c.Regions))
	case c.NodesPerRegion < 1 || c.NodesPerRegion > 254:
		return c, fmt.Errorf("%w: %d nodes per region: want 1 to 254", ErrConfig, c.NodesPerRegion)
	case c.UIDBase < 0 || c.HeartbeatTimeout < 0 || c.ElectionTimeout < 0 || c.LeaderLeaseTimeout < 0 ||
		c.DeadServerGrace < 0 || c.StartTimeout < 0 || c.TargetVoters < 0:
		return c, fmt.Errorf("%w: negative uid base, timeout or voter count", ErrConfig)
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if !regionName.MatchString(r) {
			return c, fmt.Errorf("%w: region %q: want lower-case letters, digits and dashes", ErrConfig, r)
		}
		if seen[r] {
			return c, fmt.Errorf("%w: region %q given twice", ErrConfig, r)
		}
		seen[r] = true
	}
	if c.UIDBase == 0 {
		c.UIDBase = 3100000
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = 250 * time.Millisecond
	}
	if c.DeadServerGrace == 0 {
		c.DeadServerGrace = time.Hour
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	return c, nil
}
