package fsm

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const tRewrap = fsmpb.CommandType_COMMAND_TYPE_REWRAP_VERSIONS

// rewrap is one entry moving keyID v from DK `from` to DK `to`, with
// recognisable new bytes.
func rewrap(keyID string, v, from, to uint32) *fsmpb.Rewrap {
	return &fsmpb.Rewrap{KeyId: keyID, Version: v, FromDomainKeyVersion: from, ToDomainKeyVersion: to,
		WrappedMaterial: bytes.Repeat([]byte{byte(0x80 | to), byte(v)}, 20)}
}

func rewraps(es ...*fsmpb.Rewrap) *fsmpb.RewrapVersions { return &fsmpb.RewrapVersions{Versions: es} }

// dkVersions lists a key's versions' DK versions.
func dkVersions(k *fsmpb.Key) []uint32 {
	var out []uint32
	for _, v := range k.GetVersions() {
		out = append(out, v.GetDomainKeyVersion())
	}
	return out
}

func TestRewrapVersions(t *testing.T) {
	h := newHarness(t)
	h.mustApply(tCreate, &fsmpb.CreateKey{Key: newKey("k-1", specSymmetric, usageEncrypt, 3)})
	h.keyInState("k-dis", disabled)
	h.keyInState("k-pend", pending)
	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: 90})
	before := h.key("k-1")
	notified := 0
	h.f.Subscribe(func(string) { notified++ })

	res := h.mustApply(tRewrap, rewraps(
		rewrap("k-1", 1, 1, 2),
		rewrap("k-1", 3, 1, 2),
		rewrap("k-1", 2, 7, 2), // not under DK 7: skipped
		rewrap("k-dis", 1, 1, 2),
		rewrap("k-pend", 1, 1, 2),
		rewrap("k-gone", 1, 1, 2), // deleted meanwhile: skipped
		rewrap("k-1", 9, 1, 2),    // no such version: skipped
	))
	if res.GetKey() != nil {
		t.Fatalf("result carries a key: %v", res.GetKey())
	}
	k := h.key("k-1")
	if got := dkVersions(k); !slices.Equal(got, []uint32{2, 1, 2}) {
		t.Fatalf("k-1 DK versions %v, want [2 1 2]", got)
	}
	if !bytes.Equal(k.GetVersions()[0].GetWrappedMaterial(), rewrap("k-1", 1, 1, 2).GetWrappedMaterial()) ||
		!bytes.Equal(k.GetVersions()[1].GetWrappedMaterial(), before.GetVersions()[1].GetWrappedMaterial()) {
		t.Fatal("wrapped material not replaced exactly where applied")
	}
	// Nothing but the wrapping changed, and the published record the
	// reader held is untouched.
	strip := func(k *fsmpb.Key) *fsmpb.Key {
		c := proto.Clone(k).(*fsmpb.Key)
		for _, v := range c.Versions {
			v.WrappedMaterial, v.DomainKeyVersion = nil, 0
		}
		return c
	}
	if !proto.Equal(strip(k), strip(before)) || !slices.Equal(dkVersions(before), []uint32{1, 1, 1}) {
		t.Fatalf("re-wrap changed more than the wrapping:\n%v\n%v", k, before)
	}
	for _, id := range []string{"k-dis", "k-pend"} {
		if got := dkVersions(h.key(id)); !slices.Equal(got, []uint32{2}) {
			t.Fatalf("%s DK versions %v: keys in every state move", id, got)
		}
	}
	if notified != 0 {
		t.Fatalf("re-wrap notified subscribers %d times; cached material is still valid", notified)
	}
	// The time indexes still hold: rotation due when it was.
	if due := h.f.DueRotations(h.now.Add(90 * 24 * time.Hour)); !slices.Contains(due, "k-1") {
		t.Fatalf("k-1 left the rotation index: %v", due)
	}
	if due := h.f.DueDeletions(h.now.Add(8 * 24 * time.Hour)); !slices.Equal(due, []string{"k-pend"}) {
		t.Fatalf("deletion index %v", due)
	}

	// Re-running is a no-op: every entry now expects a DK the blob is not under.
	snap := snapshotBytes(t, h.f)
	h.mustApply(tRewrap, rewraps(rewrap("k-1", 1, 1, 2), rewrap("k-dis", 1, 1, 2)))
	if !proto.Equal(h.key("k-1"), k) || !slices.Equal(dkVersions(h.key("k-dis")), []uint32{2}) {
		t.Fatal("a replayed re-wrap changed state")
	}

	// Entries chain in order within one command.
	h.mustApply(tRewrap, rewraps(rewrap("k-1", 2, 1, 2), rewrap("k-1", 2, 2, 3)))
	if got := dkVersions(h.key("k-1")); !slices.Equal(got, []uint32{2, 3, 2}) {
		t.Fatalf("chained entries: %v", got)
	}

	// A snapshot carries the re-wrapped versions.
	g := New(testLogger(t))
	if err := g.Restore(readCloser(snap)); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Key("k-1"); !proto.Equal(got, k) {
		t.Fatalf("restored k-1 %v, want %v", got, k)
	}
}

func TestRewrapVersionsInvalid(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	good := rewrap("k-1", 1, 1, 2)
	many := make([]*fsmpb.Rewrap, MaxRewrapBatch+1)
	for i := range many {
		many[i] = good
	}
	noMaterial := rewrap("k-1", 1, 1, 2)
	noMaterial.WrappedMaterial = nil
	tests := []struct {
		name string
		p    *fsmpb.RewrapVersions
		msg  string
	}{
		{"empty", rewraps(), "0 entries"},
		{"too many", rewraps(many...), "1001 entries; must be 1-1000"},
		{"no key id", rewraps(good, rewrap("", 1, 1, 2)), "entry 1: key id is empty"},
		{"version 0", rewraps(good, rewrap("k-1", 0, 1, 2)), "version 0"},
		{"no material", rewraps(good, noMaterial), "no wrapped material"},
		{"same DK", rewraps(good, rewrap("k-1", 1, 2, 2)), "both 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.apply(tRewrap, tc.p)
			if res.GetErrorCode() != CodeInvalid || !bytes.Contains([]byte(res.GetErrorMessage()), []byte(tc.msg)) {
				t.Fatalf("result %s %q, want Invalid mentioning %q", res.GetErrorCode(), res.GetErrorMessage(), tc.msg)
			}
			if got := dkVersions(h.key("k-1")); !slices.Equal(got, []uint32{1}) {
				t.Fatalf("a refused command applied its valid entries: %v", got)
			}
		})
	}
}
