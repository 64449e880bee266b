package fsm

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const (
	specSymmetric = fsmpb.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT
	specHMAC256   = fsmpb.KeySpec_KEY_SPEC_HMAC_256
	usageEncrypt  = fsmpb.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT
	usageMAC      = fsmpb.KeyUsage_KEY_USAGE_GENERATE_VERIFY_MAC
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// harness drives an FSM with encoded log entries, as raft's FSM goroutine
// does through the cluster's adapter, and keeps the log index and the
// proposer's clock.
type harness struct {
	t     testing.TB
	f     *FSM
	index uint64
	now   time.Time
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, f: New(testLogger(t)), now: t0}
}

// testLogger routes the FSM's log lines to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// entry is one committed log entry as Apply takes it.
type entry struct {
	index uint64
	data  []byte
}

func (h *harness) log(c *fsmpb.Command) entry {
	h.t.Helper()
	data, err := EncodeCommand(c)
	if err != nil {
		h.t.Fatalf("encode: %v", err)
	}
	h.index++
	return entry{index: h.index, data: data}
}

func (h *harness) command(ct fsmpb.CommandType, payload proto.Message, requestID string) *fsmpb.Command {
	h.t.Helper()
	c, err := NewCommand(ct, payload, requestID, h.now)
	if err != nil {
		h.t.Fatalf("new command: %v", err)
	}
	return c
}

// applyReq applies one command with a request id and returns its Result.
func (h *harness) applyReq(ct fsmpb.CommandType, payload proto.Message, requestID string) *fsmpb.Result {
	h.t.Helper()
	return h.applyCommand(h.command(ct, payload, requestID))
}

func (h *harness) apply(ct fsmpb.CommandType, payload proto.Message) *fsmpb.Result {
	h.t.Helper()
	return h.applyReq(ct, payload, "")
}

func (h *harness) applyCommand(c *fsmpb.Command) *fsmpb.Result {
	h.t.Helper()
	e := h.log(c)
	res := h.f.Apply(e.index, e.data)
	if res == nil {
		h.t.Fatalf("apply %s: no Result", c.GetType())
	}
	if res.GetIndex() == 0 {
		h.t.Fatalf("apply %s: result without index", c.GetType())
	}
	return res
}

// mustApply applies and fails the test unless the command succeeded.
func (h *harness) mustApply(ct fsmpb.CommandType, payload proto.Message) *fsmpb.Result {
	h.t.Helper()
	res := h.apply(ct, payload)
	if res.GetErrorCode() != "" {
		h.t.Fatalf("apply %s: %s: %s", ct, res.GetErrorCode(), res.GetErrorMessage())
	}
	return res
}

func (h *harness) key(id string) *fsmpb.Key {
	h.t.Helper()
	k, ok := h.f.Key(id)
	if !ok {
		h.t.Fatalf("key %s not found", id)
	}
	return k
}

// newKey makes a complete ENABLED key with versions 1..n, the way the
// keystore proposes one.
func newKey(id string, spec fsmpb.KeySpec, usage fsmpb.KeyUsage, n int) *fsmpb.Key {
	k := &fsmpb.Key{
		Id:              id,
		Spec:            spec,
		Usage:           usage,
		State:           fsmpb.KeyState_KEY_STATE_ENABLED,
		Origin:          fsmpb.Origin_ORIGIN_MERIDIAN,
		ProtectionLevel: fsmpb.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE,
	}
	for v := 1; v <= n; v++ {
		k.Versions = append(k.Versions, newVersion(v))
	}
	return k
}

func newVersion(v int) *fsmpb.KeyVersion {
	return &fsmpb.KeyVersion{
		Version:          uint32(v),
		WrappedMaterial:  bytes.Repeat([]byte{byte(v)}, 40),
		DomainKeyVersion: 1,
	}
}

func (h *harness) createKey(id string) *fsmpb.Key {
	h.t.Helper()
	return h.mustApply(fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY,
		&fsmpb.CreateKey{Key: newKey(id, specSymmetric, usageEncrypt, 1)}).GetKey()
}

// keyInState creates id and moves it to state.
func (h *harness) keyInState(id string, state fsmpb.KeyState) {
	h.t.Helper()
	h.createKey(id)
	switch state {
	case disabled:
		h.mustApply(fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY, &fsmpb.KeyRef{KeyId: id})
	case pending:
		h.mustApply(fsmpb.CommandType_COMMAND_TYPE_SCHEDULE_DELETION,
			&fsmpb.ScheduleDeletion{KeyId: id, PendingWindowDays: 7})
	}
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.Snapshot().Persist(&buf); err != nil {
		t.Fatalf("persist: %v", err)
	}
	return buf.Bytes()
}

// mustPanic runs fn and returns the panic message, failing if none.
func mustPanic(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg = fmt.Sprint(r)
	}()
	fn()
	return ""
}
