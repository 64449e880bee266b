package fsm

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func TestIdempotentReplay(t *testing.T) {
	h := newHarness(t)
	create := &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 1)}
	first := h.applyReq(tCreate, create, "req-1")
	if first.GetErrorCode() != "" {
		t.Fatal(first)
	}
	firstCopy := proto.Clone(first)
	h.mustApply(tDisable, &fsmpb.KeyRef{KeyId: "k-1"})

	// The retry, even with another payload, returns the first Result
	// (same index, the key as it was then) and changes nothing.
	h.now = h.now.Add(time.Minute)
	retry := h.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("k-2", specSymmetric, usageEncrypt, 1)}, "req-1")
	if !proto.Equal(retry, firstCopy) || retry.GetIndex() != 1 {
		t.Fatalf("retry = %v\nwant %v", retry, firstCopy)
	}
	if _, ok := h.f.Key("k-2"); ok || h.f.KeyCount() != 1 || h.key("k-1").GetState() != disabled {
		t.Fatal("the retry changed the state")
	}
	if h.f.AppliedIndex() != h.index {
		t.Fatalf("applied index %d, want %d", h.f.AppliedIndex(), h.index)
	}

	// A failure is remembered too: the retry gets it back after the state
	// would now allow the command.
	miss := h.applyReq(tEnable, &fsmpb.KeyRef{KeyId: "k-9"}, "req-2")
	h.createKey("k-9")
	h.mustApply(tDisable, &fsmpb.KeyRef{KeyId: "k-9"})
	again := h.applyReq(tEnable, &fsmpb.KeyRef{KeyId: "k-9"}, "req-2")
	if again.GetErrorCode() != CodeNotFound || again.GetIndex() != miss.GetIndex() {
		t.Fatalf("retried failure = %v", again)
	}
	if h.key("k-9").GetState() != disabled {
		t.Fatal("retried failure applied")
	}
}

func TestRememberedRequestsArePruned(t *testing.T) {
	h := newHarness(t)
	h.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 1)}, "old")
	h.now = t0.Add(time.Hour)
	h.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("k-2", specSymmetric, usageEncrypt, 1)}, "newer")
	if n := h.f.st.Load().requests.Len(); n != 2 {
		t.Fatalf("remembered %d", n)
	}

	// Exactly 24 h after "old": still remembered.
	h.now = t0.Add(requestMemory)
	h.mustApply(tDesc, &fsmpb.UpdateDescription{KeyId: "k-1", Description: "x"})
	if n := h.f.st.Load().requests.Len(); n != 2 {
		t.Fatalf("pruned too early: %d", n)
	}
	// One nanosecond later "old" is forgotten, so a retry applies anew
	// (and meets the key it created: AlreadyExists).
	h.now = t0.Add(requestMemory + 1)
	res := h.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 1)}, "old")
	if res.GetErrorCode() != CodeAlreadyExists {
		t.Fatalf("after pruning: %v", res)
	}
	st := h.f.st.Load()
	if st.requests.Len() != 2 || st.requestsByTime.Len() != 2 {
		t.Fatalf("requests %d, by time %d", st.requests.Len(), st.requestsByTime.Len())
	}
	if r, _ := st.requests.Get([]byte("old")); r.GetTimeUnixNano() != h.now.UnixNano() {
		t.Fatalf("re-remembered at %d", r.GetTimeUnixNano())
	}
}

func TestUnknownCommands(t *testing.T) {
	tests := []struct {
		name    string
		typ     fsmpb.CommandType
		version uint32
		flagged bool
	}{
		{"unknown type flagged", fsmpb.CommandType(999), 1, true},
		{"unknown type", fsmpb.CommandType(999), 1, false},
		{"unspecified type", fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED, 1, false},
		{"newer envelope flagged", tDisable, CommandVersion + 1, true},
		{"newer envelope", tDisable, CommandVersion + 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.createKey("k-1")
			payload, _ := proto.Marshal(&fsmpb.KeyRef{KeyId: "k-1"})
			c := &fsmpb.Command{Version: tc.version, Type: tc.typ, IgnoreIfUnknown: tc.flagged,
				RequestId: "r", TimeUnixNano: t0.UnixNano(), Payload: payload}
			if !tc.flagged {
				msg := mustPanic(t, func() { h.applyCommand(c) })
				if !strings.Contains(msg, "unknown command") || !strings.Contains(msg, "upgrade") {
					t.Fatalf("panic message %q", msg)
				}
				return
			}
			res := h.applyCommand(c)
			if res.GetErrorCode() != "" || res.GetKey() != nil || res.GetIndex() != h.index {
				t.Fatalf("skip result = %v", res)
			}
			if h.key("k-1").GetState() != enabled || h.f.AppliedIndex() != h.index {
				t.Fatal("a skipped command changed the state or did not advance the index")
			}
			if h.f.st.Load().requests.Len() != 0 {
				t.Fatal("a skipped command was remembered")
			}
		})
	}
}

func TestUndecodableEntriesPanic(t *testing.T) {
	h := newHarness(t)
	msg := mustPanic(t, func() {
		h.f.Apply(7, []byte{0xff, 0x01})
	})
	if !strings.Contains(msg, "log entry 7") {
		t.Fatalf("panic message %q", msg)
	}
	msg = mustPanic(t, func() {
		h.applyCommand(&fsmpb.Command{Version: 1, Type: tCreate, Payload: []byte{0x0a, 0x05, 0x01}})
	})
	if !strings.Contains(msg, "does not decode") || !strings.Contains(msg, "CREATE_KEY") {
		t.Fatalf("panic message %q", msg)
	}
	// The FSM still works after a recovered panic (the lock was released).
	h.createKey("k-1")
}

func TestSubscribe(t *testing.T) {
	h := newHarness(t)
	var got []string
	h.f.Subscribe(func(id string) { got = append(got, id) })
	h.createKey("k-1")
	h.mustApply(tEnable, &fsmpb.KeyRef{KeyId: "k-1"}) // no-op: no event
	h.apply(tEnable, &fsmpb.KeyRef{KeyId: "nope"})    // failure: no event
	h.mustApply(tDisable, &fsmpb.KeyRef{KeyId: "k-1"})
	h.mustApply(tRegister, &fsmpb.Node{Id: "n1"}) // not a key
	h.mustApply(tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-1", PendingWindowDays: 7})
	h.now = h.now.Add(8 * 24 * time.Hour)
	h.mustApply(tDelete, &fsmpb.KeyRef{KeyId: "k-1"})
	want := []string{"k-1", "k-1", "k-1", "k-1"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if err := h.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != "" || len(got) != 5 {
		t.Fatalf("restore events %v", got)
	}
}
