package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// applier is a command's handler bound to its decoded payload. It returns
// domain failures as Results.
type applier func(tx *txn) *fsmpb.Result

// decoder parses one command type's payload into its applier. It is the only
// place a payload is decoded, so CheckCommand and Apply judge it alike.
type decoder func(payload []byte) (applier, error)

// commandTable maps each command type to its decoder. It is built once and
// read-only afterwards; adding a command means one register line here and
// one handler, nothing in Apply or in the cluster's pre-proposal check.
var commandTable = buildCommandTable()

func buildCommandTable() map[fsmpb.CommandType]decoder {
	t := map[fsmpb.CommandType]decoder{}
	register(t, fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, applyCreateKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_UPDATE_DESCRIPTION, applyUpdateDescription)
	register(t, fsmpb.CommandType_COMMAND_TYPE_TAG_KEY, applyTagKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_UNTAG_KEY, applyUntagKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_CREATE_ALIAS, applyCreateAlias)
	register(t, fsmpb.CommandType_COMMAND_TYPE_UPDATE_ALIAS, applyUpdateAlias)
	register(t, fsmpb.CommandType_COMMAND_TYPE_DELETE_ALIAS, applyDeleteAlias)
	register(t, fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, applyEnableKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY, applyDisableKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_SCHEDULE_DELETION, applyScheduleDeletion)
	register(t, fsmpb.CommandType_COMMAND_TYPE_CANCEL_DELETION, applyCancelDeletion)
	register(t, fsmpb.CommandType_COMMAND_TYPE_DELETE_KEY, applyDeleteKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_ENABLE_ROTATION, applyEnableRotation)
	register(t, fsmpb.CommandType_COMMAND_TYPE_DISABLE_ROTATION, applyDisableRotation)
	register(t, fsmpb.CommandType_COMMAND_TYPE_ROTATE_KEY, applyRotateKey)
	register(t, fsmpb.CommandType_COMMAND_TYPE_REGISTER_NODE, applyRegisterNode)
	register(t, fsmpb.CommandType_COMMAND_TYPE_DEREGISTER_NODE, applyDeregisterNode)
	register(t, fsmpb.CommandType_COMMAND_TYPE_REWRAP_VERSIONS, applyRewrapVersions)
	return t
}

// register adds the decoder for ct: the decoding of its payload type P,
// bound to fn. Registering a type twice is a programming error.
func register[T any, P interface {
	*T
	proto.Message
}](t map[fsmpb.CommandType]decoder, ct fsmpb.CommandType, fn func(tx *txn, p P) *fsmpb.Result) {
	if _, dup := t[ct]; dup {
		panic(fmt.Sprintf("fsm: command %s registered twice", ct))
	}
	t[ct] = func(payload []byte) (applier, error) {
		p := P(new(T))
		if err := proto.Unmarshal(payload, p); err != nil {
			return nil, fmt.Errorf("%s payload (%d bytes) does not decode as %T: %w: %w",
				ct, len(payload), p, ErrBadCommand, err)
		}
		return func(tx *txn) *fsmpb.Result { return fn(tx, p) }, nil
	}
}

// CheckCommand reports, as an error wrapping ErrBadCommand, whether Apply
// would panic on c: a nil command, an envelope version this node does not
// know (0, or newer than CommandVersion unless flagged ignore_if_unknown),
// an unknown type not flagged ignore_if_unknown, or a payload that does not
// decode as its type's message. A leader calls it before proposing, because
// a committed entry Apply panics on stops every node. Apply makes the same
// decision through the same code, so the two cannot drift.
func CheckCommand(c *fsmpb.Command) error {
	_, err := prepare(c)
	return err
}

// prepare decides what Apply does with c: run it (the returned applier),
// skip it (nil applier, nil error: an unknown command flagged
// ignore_if_unknown), or panic (an error wrapping ErrBadCommand).
func prepare(c *fsmpb.Command) (applier, error) {
	if c == nil {
		return nil, fmt.Errorf("check command: nil: %w", ErrBadCommand)
	}
	// Version 0 is the proto default, i.e. an envelope nobody versioned;
	// DecodeCommand refuses it whatever the flag says, so this must too.
	if c.GetVersion() == 0 {
		return nil, fmt.Errorf("check %s command: envelope version 0: %w", c.GetType(), ErrBadCommand)
	}
	decode, known := commandTable[c.GetType()]
	if !known || c.GetVersion() > CommandVersion {
		if c.GetIgnoreIfUnknown() {
			return nil, nil
		}
		return nil, fmt.Errorf("check command: unknown command %s (envelope version %d) not flagged "+
			"ignore_if_unknown; this node knows envelope version %d: upgrade it to apply this: %w",
			c.GetType(), c.GetVersion(), CommandVersion, ErrBadCommand)
	}
	run, err := decode(c.GetPayload())
	if err != nil {
		return nil, fmt.Errorf("check command: %w", err)
	}
	return run, nil
}
