// Package fsm is Meridian's replicated state machine: the Raft log command
// encoding, the keys, versions, aliases and cluster members every node holds,
// and snapshot/restore. Apply is deterministic: it never reads the clock, the
// network or the HSM; a command carries its time and already-wrapped material.
package fsm

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// CommandVersion is the newest Command envelope version this node applies.
// A newer envelope is treated like an unknown command type.
const CommandVersion = 1

// Result error codes carried in fsmpb.Result.ErrorCode; "" means success.
// They are values, not Go errors, because a Result crosses the network when a
// follower forwards a write to the leader.
const (
	CodeNotFound      = "NotFound"      // key or alias missing
	CodeAlreadyExists = "AlreadyExists" // key id or alias name taken
	CodeDisabled      = "Disabled"      // key is DISABLED and the command needs ENABLED
	CodeInvalidState  = "InvalidState"  // e.g. key PENDING_DELETION, cancel on a non-pending key
	CodeConflict      = "Conflict"      // RotateKey version is not current+1 (a concurrent rotation won)
	CodeInvalid       = "Invalid"       // semantically malformed command (missing id, ...)
)

// Sentinel errors of the encoding helpers and of Restore, and the one
// failure every proposer of commands shares.
var (
	// ErrNoLeader is what a replicator of commands (cluster.Node.Apply, which
	// re-exports it) returns when no leader was known or reachable before
	// the deadline: a node in a minority partition, or a cluster
	// mid-election. It lives with the commands, not with raft, so that a
	// proposer (the keystore) can tell it apart without importing the
	// cluster and raft.
	ErrNoLeader = errors.New("no cluster leader: no quorum or election in progress")
	// ErrBadCommand reports a command that cannot be encoded or decoded.
	ErrBadCommand = errors.New("fsm: bad command")
	// ErrBadSnapshot reports a snapshot stream that is truncated, corrupt
	// or of an unknown version.
	ErrBadSnapshot = errors.New("fsm: bad snapshot")
)

// deterministic marshalling keeps map order (tags) stable, so the same
// command encodes to the same bytes on every node and in every test.
var marshal = proto.MarshalOptions{Deterministic: true}

// NewCommand builds a version-CommandVersion envelope around payload. now is
// the proposer's clock: Apply uses it for every time it records. requestID
// may be empty for commands the leader makes itself.
func NewCommand(t fsmpb.CommandType, payload proto.Message, requestID string, now time.Time) (*fsmpb.Command, error) {
	if t == fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED {
		return nil, fmt.Errorf("new command: type unspecified: %w", ErrBadCommand)
	}
	if payload == nil {
		return nil, fmt.Errorf("new %s command: nil payload: %w", t, ErrBadCommand)
	}
	b, err := marshal.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("new %s command: marshal payload: %w: %w", t, ErrBadCommand, err)
	}
	return &fsmpb.Command{
		Version:      CommandVersion,
		Type:         t,
		RequestId:    requestID,
		TimeUnixNano: now.UnixNano(),
		Payload:      b,
	}, nil
}

// EncodeCommand marshals c into the bytes of a Raft log entry.
func EncodeCommand(c *fsmpb.Command) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("encode command: nil: %w", ErrBadCommand)
	}
	if c.GetVersion() == 0 {
		return nil, fmt.Errorf("encode %s command: version 0: %w", c.GetType(), ErrBadCommand)
	}
	b, err := marshal.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w: %w", c.GetType(), ErrBadCommand, err)
	}
	return b, nil
}

// DecodeCommand parses a Raft log entry. It returns an error wrapping
// ErrBadCommand for anything that is not a Command envelope; it does not
// judge the type or version (Apply does, so that flagged newer commands can
// be skipped).
func DecodeCommand(b []byte) (*fsmpb.Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode command: empty entry: %w", ErrBadCommand)
	}
	c := &fsmpb.Command{}
	if err := proto.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("decode command (%d bytes): %w: %w", len(b), ErrBadCommand, err)
	}
	if c.GetVersion() == 0 {
		return nil, fmt.Errorf("decode command (%d bytes): envelope version 0: %w", len(b), ErrBadCommand)
	}
	return c, nil
}

func success(k *fsmpb.Key) *fsmpb.Result {
	return &fsmpb.Result{Key: k}
}

func failure(code, format string, args ...any) *fsmpb.Result {
	return &fsmpb.Result{ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}
}
