package fsm

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// checkBase is a state with something for every command type to act on, so
// that accepted commands reach deep into their handlers: key k-1 (ENABLED,
// two versions, rotation on), key k-2 (PENDING_DELETION), alias alias/a,
// node n1 and the remembered request r-1.
func checkBase(t testing.TB) *FSM {
	h := newHarness(t)
	h.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 2)}, "r-1")
	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: 90})
	h.keyInState("k-2", pending)
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "k-1"})
	h.mustApply(tRegister, &fsmpb.Node{Id: "n1", RaftAddr: "127.0.0.1:1"})
	return h.f
}

// fork returns an FSM starting from base's state. States are immutable, so
// base is untouched by whatever the fork applies.
func fork(base *FSM) *FSM {
	f := New(nil)
	f.st.Store(base.st.Load())
	f.applied.Store(base.AppliedIndex())
	return f
}

// applyRaw hands c to Apply as raft would, bypassing EncodeCommand's own
// checks, and reports the Result or the panic. ok is false when c cannot be
// marshalled at all (e.g. a request id that is not UTF-8): no log entry can
// carry it, so there is nothing to apply.
func applyRaw(f *FSM, c *fsmpb.Command) (res *fsmpb.Result, panicMsg string, ok bool) {
	data, err := marshal.Marshal(c)
	if err != nil {
		return nil, "", false
	}
	defer func() {
		if r := recover(); r != nil {
			panicMsg = fmt.Sprint(r)
			if panicMsg == "" {
				panicMsg = "(empty panic)"
			}
		}
	}()
	index := f.AppliedIndex() + 1
	return f.Apply(index, data), "", true
}

// checkAgreesWithApply fails t unless CheckCommand refuses c exactly when
// Apply panics on it, and refuses with ErrBadCommand.
func checkAgreesWithApply(t *testing.T, base *FSM, c *fsmpb.Command) {
	t.Helper()
	checkErr := CheckCommand(c)
	if checkErr != nil && !errors.Is(checkErr, ErrBadCommand) {
		t.Fatalf("CheckCommand: %v does not wrap ErrBadCommand", checkErr)
	}
	f := fork(base)
	res, panicMsg, ok := applyRaw(f, c)
	switch {
	case !ok:
		return
	case checkErr == nil && panicMsg != "":
		t.Fatalf("CheckCommand accepted %v but Apply panicked: %s", c, panicMsg)
	case checkErr != nil && panicMsg == "":
		t.Fatalf("CheckCommand refused %v (%v) but Apply did not panic", c, checkErr)
	case checkErr == nil && (res == nil || res.GetIndex() == 0 || f.AppliedIndex() != base.AppliedIndex()+1):
		// A retried request answers with its first Result, hence its index.
		t.Fatalf("Apply of accepted %v returned %v, applied index %d", c, res, f.AppliedIndex())
	}
}

func TestCheckCommand(t *testing.T) {
	base := checkBase(t)
	ref, _ := proto.Marshal(&fsmpb.KeyRef{KeyId: "k-1"})
	cmd := func(version uint32, ct fsmpb.CommandType, flagged bool, payload []byte) *fsmpb.Command {
		return &fsmpb.Command{Version: version, Type: ct, IgnoreIfUnknown: flagged,
			RequestId: "r-new", TimeUnixNano: t0.UnixNano(), Payload: payload}
	}
	retryOfBad := cmd(CommandVersion, tCreate, false, []byte{0xff})
	retryOfBad.RequestId = "r-1" // remembered: a retry still must not carry a bad payload
	tests := []struct {
		name    string
		c       *fsmpb.Command
		wantErr bool
	}{
		{"valid", cmd(CommandVersion, tDisable, false, ref), false},
		{"valid flagged", cmd(CommandVersion, tDisable, true, ref), false},
		{"unknown type flagged", cmd(CommandVersion, 999, true, []byte{0xff}), false},
		{"unspecified type flagged", cmd(CommandVersion, 0, true, nil), false},
		{"newer envelope flagged", cmd(CommandVersion+1, tDisable, true, []byte{0xff}), false},
		{"nil", nil, true},
		{"version 0", cmd(0, tDisable, false, ref), true},
		{"version 0 flagged", cmd(0, tDisable, true, ref), true},
		{"unknown type", cmd(CommandVersion, 999, false, ref), true},
		{"negative type", cmd(CommandVersion, -1, false, ref), true},
		{"unspecified type", cmd(CommandVersion, 0, false, nil), true},
		{"newer envelope", cmd(CommandVersion+1, tDisable, false, ref), true},
		{"bad payload flagged", cmd(CommandVersion, tDisable, true, []byte{0xff}), true},
		{"bad payload of a remembered request", retryOfBad, true},
	}
	for ct := range commandTable {
		tests = append(tests,
			struct {
				name    string
				c       *fsmpb.Command
				wantErr bool
			}{ct.String() + " empty payload", cmd(CommandVersion, ct, false, nil), false},
			struct {
				name    string
				c       *fsmpb.Command
				wantErr bool
			}{ct.String() + " truncated payload", cmd(CommandVersion, ct, false, []byte{0x0a, 0x05, 0x01}), true},
			struct {
				name    string
				c       *fsmpb.Command
				wantErr bool
			}{ct.String() + " bad tag", cmd(CommandVersion, ct, false, []byte{0xff}), true},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCommand(tc.c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckCommand = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, ErrBadCommand) {
				t.Fatalf("CheckCommand = %v, want ErrBadCommand", err)
			}
			if tc.c != nil {
				checkAgreesWithApply(t, base, tc.c)
			}
		})
	}
}
