package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// handler applies one decoded command to tx. It returns domain failures as
// Results; it panics only when the payload will not decode.
type handler func(tx *txn, cmd *fsmpb.Command) *fsmpb.Result

// commandTable maps each command type to its handler. It is built once and
// read-only afterwards; adding a command means one register line here and
// one handler, nothing in Apply.
var commandTable = buildCommandTable()

func buildCommandTable() map[fsmpb.CommandType]handler {
	t := map[fsmpb.CommandType]handler{}
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
	return t
}

// register adds the handler for ct, wrapping fn with the decoding of its
// payload type P. Registering a type twice is a programming error.
func register[T any, P interface {
	*T
	proto.Message
}](t map[fsmpb.CommandType]handler, ct fsmpb.CommandType, fn func(tx *txn, p P) *fsmpb.Result) {
	if _, dup := t[ct]; dup {
		panic(fmt.Sprintf("fsm: command %s registered twice", ct))
	}
	t[ct] = func(tx *txn, cmd *fsmpb.Command) *fsmpb.Result {
		p := P(new(T))
		if err := proto.Unmarshal(cmd.GetPayload(), p); err != nil {
			panic(fmt.Sprintf("fsm: log entry %d: %s payload (%d bytes) does not decode as %T: %v",
				tx.index, ct, len(cmd.GetPayload()), p, err))
		}
		return fn(tx, p)
	}
}
