package keystore

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// fsmpbMessage is a command payload.
type fsmpbMessage = proto.Message

// errConflict is the fsm's Conflict code: a rotation lost a race. Only
// rotation sees it, and retries.
var errConflict = errors.New("rotation conflict")

// propose replicates one command and maps the outcome to keystore errors.
// requestID is the caller's idempotency key; empty makes a fresh one.
func (s *Store) propose(ctx context.Context, op string, t fsmpb.CommandType, payload proto.Message, requestID string) (*fsmpb.Result, error) {
	if requestID == "" {
		requestID = s.cfg.NewRequestID()
	}
	cmd, err := fsm.NewCommand(t, payload, requestID, s.now())
	if err != nil {
		return nil, fmt.Errorf("%s: build command: %w: %w", op, ErrInternal, err)
	}
	res, err := s.ap.Apply(ctx, cmd)
	if err != nil {
		return nil, applyErr(op, err)
	}
	if res == nil {
		return nil, fmt.Errorf("%s: %w: applier returned no result", op, ErrInternal)
	}
	if err := resultErr(res); err != nil {
		return nil, err
	}
	return res, nil
}

// applyErr maps a replication failure: the caller's context passes through;
// no leader means no quorum; anything else is ErrUnavailable (a retry, here
// or on another node, may succeed; the request id makes that safe).
func applyErr(op string, err error) error {
	switch {
	case errors.Is(err, fsm.ErrNoLeader):
		// Checked before the context: a minority partition ends the wait
		// with both, and "no quorum" is the truer explanation.
		return userErr(ErrUnavailable, "%s: no quorum: no Raft leader reachable from this node; control-plane writes need a majority of voters (data-plane operations keep working here)", op)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: replicate: %w", op, ErrUnavailable, err)
}

// resultErr maps an fsm Result code to a keystore error. The fsm's messages
// name keys and aliases and states only, so they are safe to show.
func resultErr(res *fsmpb.Result) error {
	msg := res.GetErrorMessage()
	switch res.GetErrorCode() {
	case "":
		return nil
	case fsm.CodeNotFound:
		return userErr(ErrNotFound, "%s", msg)
	case fsm.CodeAlreadyExists:
		return userErr(ErrAlreadyExists, "%s", msg)
	case fsm.CodeDisabled:
		return userErr(ErrDisabled, "%s", msg)
	case fsm.CodeInvalidState:
		return userErr(ErrInvalidState, "%s", msg)
	case fsm.CodeConflict:
		return fmt.Errorf("%w: %s", errConflict, msg)
	case fsm.CodeInvalid:
		return userErr(ErrValidation, "%s", msg)
	}
	return fmt.Errorf("%w: unknown fsm result code %q: %s", ErrInternal, res.GetErrorCode(), msg)
}

// writeResult is a write's consistency token and the key it acted on, as
// the fsm's result names it.
func writeResult(res *fsmpb.Result) WriteResult {
	return WriteResult{CommitIndex: res.GetIndex(), KeyID: res.GetKey().GetId()}
}
