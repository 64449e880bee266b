package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// metaVersion is the first byte of every encoded Meta. A decoder refuses
// versions it does not know rather than guess at the layout.
const metaVersion = 1

// metaMaxSize is memberlist's limit on node metadata (memberlist.MetaMaxSize).
const metaMaxSize = 512

// ErrBadMeta means gossip node metadata did not decode. Metadata comes from
// the network (authenticated by the gossip key, but possibly from a newer or
// broken peer), so it is parsed defensively.
var ErrBadMeta = errors.New("bad gossip node metadata")

// Role is a node's Raft suffrage as it believes it (in gossip metadata) or
// as the leader's configuration has it (in Members).
type Role uint8

// Roles, in the order of meridian.v1's Member.Role.
const (
	RoleNone     Role = iota // not in the Raft configuration
	RoleVoter                // votes and counts toward quorum
	RoleNonvoter             // receives the log, serves reads, never votes
)

func (r Role) String() string {
	switch r {
	case RoleVoter:
		return "voter"
	case RoleNonvoter:
		return "nonvoter"
	default:
		return "none"
	}
}

// Meta is what a node advertises about itself through gossip.
type Meta struct {
	ID, Region, Zone  string
	APIAddr, RaftAddr string
	BuildVersion      string
	Role              Role
	Healthy           bool
	// NoVote asks autopilot never to promote this node (Config.NonVoter):
	// a read replica that scales a region's data plane.
	NoVote bool
	// Leaving is set just before a graceful leave, so that peers can tell
	// LEFT from DEAD (memberlist's events do not say which).
	Leaving bool
	// ClusterAddr is the node's cluster-plane (node-to-node gRPC) address.
	// It is encoded after the six original fields, so a node that predates
	// it ignores it, and it decodes as "" from such a node (whose API
	// address then serves the cluster plane).
	ClusterAddr string
}

const (
	flagHealthy = 1 << iota
	flagNoVote
	flagLeaving
)

// Encode returns m's compact binary form: version, flags, role, then seven
// uvarint-length-prefixed strings (the six original fields, then
// ClusterAddr). It fails if the result exceeds the 512 bytes memberlist
// allows.
func (m Meta) Encode() ([]byte, error) {
	var flags byte
	if m.Healthy {
		flags |= flagHealthy
	}
	if m.NoVote {
		flags |= flagNoVote
	}
	if m.Leaving {
		flags |= flagLeaving
	}
	b := []byte{metaVersion, flags, byte(m.Role)}
	for _, s := range append(m.fields(), &m.ClusterAddr) {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	if len(b) > metaMaxSize {
		return nil, fmt.Errorf("%w: encoded size %d exceeds %d bytes", ErrBadMeta, len(b), metaMaxSize)
	}
	return b, nil
}

func (m *Meta) fields() []*string {
	return []*string{&m.ID, &m.Region, &m.Zone, &m.APIAddr, &m.RaftAddr, &m.BuildVersion}
}

// DecodeMeta parses bytes made by Meta.Encode. The six original fields are
// required; ClusterAddr is optional (absent from nodes that predate it).
// Trailing bytes after the known fields are ignored so a newer minor layout
// can append fields.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 3 {
		return m, fmt.Errorf("%w: %d bytes, want at least 3", ErrBadMeta, len(b))
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("%w: version %d, want %d", ErrBadMeta, b[0], metaVersion)
	}
	if b[2] > byte(RoleNonvoter) {
		return m, fmt.Errorf("%w: unknown role %d", ErrBadMeta, b[2])
	}
	m.Healthy, m.NoVote, m.Leaving = b[1]&flagHealthy != 0, b[1]&flagNoVote != 0, b[1]&flagLeaving != 0
	m.Role = Role(b[2])
	rest := b[3:]
	fields := m.fields()
	for i, s := range append(fields, &m.ClusterAddr) {
		if i == len(fields) && len(rest) == 0 {
			break // an older node: no cluster address
		}
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return Meta{}, fmt.Errorf("%w: field %d: bad length", ErrBadMeta, i)
		}
		*s = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if m.ID == "" {
		return Meta{}, fmt.Errorf("%w: empty node id", ErrBadMeta)
	}
	return m, nil
}
