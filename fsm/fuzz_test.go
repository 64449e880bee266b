package fsm

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func FuzzDecodeCommand(f *testing.F) {
	for _, tc := range []struct {
		ct fsmpb.CommandType
		p  proto.Message
	}{
		{tCreate, &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 2)}},
		{tTag, &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"a": "b"}}},
		{tCreateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "k-1"}},
		{tRotate, &fsmpb.RotateKey{KeyId: "k-1", Version: newVersion(2)}},
		{tRegister, &fsmpb.Node{Id: "n1", RaftAddr: "127.0.0.1:1"}},
	} {
		c, _ := NewCommand(tc.ct, tc.p, "req", t0)
		b, _ := EncodeCommand(c)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if c != nil {
				t.Fatal("command with error")
			}
			return
		}
		if c.GetVersion() == 0 {
			t.Fatal("accepted version 0")
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		c2, err := DecodeCommand(again)
		if err != nil || !proto.Equal(c, c2) {
			t.Fatalf("round trip: %v %v", err, c2)
		}
	})
}

func FuzzRestore(f *testing.F) {
	h := newHarness(f)
	h.createKey("k-1")
	h.mustApply(tTag, &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"a": "b"}})
	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: 90})
	h.createKey("k-2")
	h.mustApply(tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-2", PendingWindowDays: 7})
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "k-1"})
	h.applyReq(tRegister, &fsmpb.Node{Id: "n1"}, "req-1")
	good := snapshotBytes(f, h.f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(snapshotBytes(f, New(nil)))
	f.Add([]byte{})
	f.Add([]byte{0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		g := New(nil)
		if err := g.Restore(readCloser(b)); err != nil {
			if g.AppliedIndex() != 0 || g.KeyCount() != 0 {
				t.Fatal("failed restore changed state")
			}
			return
		}
		// Whatever was accepted persists and restores to the same bytes.
		out := snapshotBytes(t, g)
		g2 := New(nil)
		if err := g2.Restore(readCloser(out)); err != nil {
			t.Fatalf("re-restore: %v", err)
		}
		if !bytes.Equal(out, snapshotBytes(t, g2)) {
			t.Fatal("snapshot not stable")
		}
	})
}

// FuzzCheckCommand holds CheckCommand to its promise: it refuses a command
// exactly when Apply would panic on it, so a leader that checks before
// proposing never commits an entry that stops the cluster, and never
// refuses one that would have applied.
func FuzzCheckCommand(f *testing.F) {
	for _, tc := range []struct {
		ct fsmpb.CommandType
		p  proto.Message
	}{
		{tCreate, &fsmpb.CreateKey{Key: newKey("k-3", specHMAC256, usageMAC, 1)}},
		{tDesc, &fsmpb.UpdateDescription{KeyId: "k-1", Description: "d"}},
		{tTag, &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"a": "b"}}},
		{tUntag, &fsmpb.UntagKey{KeyId: "k-1", TagKeys: []string{"a"}}},
		{tCreateAlias, &fsmpb.AliasChange{Name: "alias/b", KeyId: "k-1"}},
		{tUpdateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "k-2"}},
		{tDeleteAlias, &fsmpb.AliasChange{Name: "alias/a"}},
		{tEnable, &fsmpb.KeyRef{KeyId: "k-1"}},
		{tDisable, &fsmpb.KeyRef{KeyId: "k-1"}},
		{tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-1", PendingWindowDays: 7}},
		{tCancel, &fsmpb.KeyRef{KeyId: "k-2"}},
		{tDelete, &fsmpb.KeyRef{KeyId: "k-2"}},
		{tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: 365}},
		{tRotOff, &fsmpb.KeyRef{KeyId: "k-1"}},
		{tRotate, &fsmpb.RotateKey{KeyId: "k-1", Version: newVersion(3)}},
		{tRegister, &fsmpb.Node{Id: "n2", RaftAddr: "127.0.0.1:2"}},
		{tDeregister, &fsmpb.Node{Id: "n1"}},
		{tRewrap, rewraps(rewrap("k-1", 1, 1, 2), rewrap("k-2", 1, 1, 2))},
	} {
		p, _ := marshal.Marshal(tc.p)
		f.Add(uint32(CommandVersion), int32(tc.ct), false, "r-2", t0.UnixNano(), p)
	}
	f.Add(uint32(CommandVersion), int32(tCreate), false, "r-1", t0.UnixNano(), []byte{}) // remembered request
	f.Add(uint32(0), int32(tEnable), true, "", t0.UnixNano(), []byte{})
	f.Add(uint32(CommandVersion+1), int32(tEnable), false, "", t0.UnixNano(), []byte{})
	f.Add(uint32(CommandVersion+1), int32(tEnable), true, "", t0.UnixNano(), []byte{0xff})
	f.Add(uint32(CommandVersion), int32(999), true, "r-3", t0.UnixNano(), []byte{0xff})
	f.Add(uint32(CommandVersion), int32(999), false, "", t0.UnixNano(), []byte{})
	f.Add(uint32(CommandVersion), int32(tRotate), false, "", t0.UnixNano(), []byte{0x0a, 0x05, 0x01})
	f.Add(uint32(CommandVersion), int32(tTag), false, "\xff", int64(-1), []byte{0x12, 0x02, 0xff, 0xfe})
	base := checkBase(f)
	f.Fuzz(func(t *testing.T, version uint32, typ int32, flagged bool, requestID string, now int64, payload []byte) {
		checkAgreesWithApply(t, base, &fsmpb.Command{
			Version: version, Type: fsmpb.CommandType(typ), IgnoreIfUnknown: flagged,
			RequestId: requestID, TimeUnixNano: now, Payload: payload,
		})
	})
}
