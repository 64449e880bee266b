package cluster

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// payloadTypes mirrors fsm.proto's type -> payload table. The fsm panics on
// a committed entry it cannot apply (so that no node diverges silently),
// which makes every such entry a cluster-wide outage; the leader therefore
// checks each command before proposing it. A type missing here is refused,
// the safe direction if the fsm grows a type first.
// TODO: replace with an fsm-exported check built from its command table.
var payloadTypes = map[fsmpb.CommandType]func() proto.Message{
	fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY:         func() proto.Message { return &fsmpb.CreateKey{} },
	fsmpb.CommandType_COMMAND_TYPE_UPDATE_DESCRIPTION: func() proto.Message { return &fsmpb.UpdateDescription{} },
	fsmpb.CommandType_COMMAND_TYPE_TAG_KEY:            func() proto.Message { return &fsmpb.TagKey{} },
	fsmpb.CommandType_COMMAND_TYPE_UNTAG_KEY:          func() proto.Message { return &fsmpb.UntagKey{} },
	fsmpb.CommandType_COMMAND_TYPE_CREATE_ALIAS:       func() proto.Message { return &fsmpb.AliasChange{} },
	fsmpb.CommandType_COMMAND_TYPE_UPDATE_ALIAS:       func() proto.Message { return &fsmpb.AliasChange{} },
	fsmpb.CommandType_COMMAND_TYPE_DELETE_ALIAS:       func() proto.Message { return &fsmpb.AliasChange{} },
	fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY:         func() proto.Message { return &fsmpb.KeyRef{} },
	fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY:        func() proto.Message { return &fsmpb.KeyRef{} },
	fsmpb.CommandType_COMMAND_TYPE_SCHEDULE_DELETION:  func() proto.Message { return &fsmpb.ScheduleDeletion{} },
	fsmpb.CommandType_COMMAND_TYPE_CANCEL_DELETION:    func() proto.Message { return &fsmpb.KeyRef{} },
	fsmpb.CommandType_COMMAND_TYPE_DELETE_KEY:         func() proto.Message { return &fsmpb.KeyRef{} },
	fsmpb.CommandType_COMMAND_TYPE_ENABLE_ROTATION:    func() proto.Message { return &fsmpb.EnableRotation{} },
	fsmpb.CommandType_COMMAND_TYPE_DISABLE_ROTATION:   func() proto.Message { return &fsmpb.KeyRef{} },
	fsmpb.CommandType_COMMAND_TYPE_ROTATE_KEY:         func() proto.Message { return &fsmpb.RotateKey{} },
	fsmpb.CommandType_COMMAND_TYPE_REGISTER_NODE:      func() proto.Message { return &fsmpb.Node{} },
	fsmpb.CommandType_COMMAND_TYPE_DEREGISTER_NODE:    func() proto.Message { return &fsmpb.Node{} },
}

// checkProposable refuses a command that every node's fsm would panic on:
// a type or envelope version this binary does not know (unless flagged
// ignore_if_unknown), or a payload that does not decode as its type's
// message. Refusing it here keeps one bad client or peer from stopping the
// whole cluster.
func checkProposable(cmd *fsmpb.Command) error {
	if cmd == nil {
		return fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	newPayload, known := payloadTypes[cmd.GetType()]
	if !known || cmd.GetVersion() > fsm.CommandVersion {
		if cmd.GetIgnoreIfUnknown() {
			return nil
		}
		return fmt.Errorf("%w: unknown command type %d or envelope version %d (this node knows %d)",
			ErrInvalidCommand, int32(cmd.GetType()), cmd.GetVersion(), fsm.CommandVersion)
	}
	if err := proto.Unmarshal(cmd.GetPayload(), newPayload()); err != nil {
		return fmt.Errorf("%w: %s payload (%d bytes) does not decode: %w",
			ErrInvalidCommand, cmd.GetType(), len(cmd.GetPayload()), err)
	}
	return nil
}
