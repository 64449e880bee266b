package fsm

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const (
	tCreate   = fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY
	tDesc     = fsmpb.CommandType_COMMAND_TYPE_UPDATE_DESCRIPTION
	tTag      = fsmpb.CommandType_COMMAND_TYPE_TAG_KEY
	tUntag    = fsmpb.CommandType_COMMAND_TYPE_UNTAG_KEY
	tEnable   = fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY
	tDisable  = fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY
	tSchedule = fsmpb.CommandType_COMMAND_TYPE_SCHEDULE_DELETION
	tCancel   = fsmpb.CommandType_COMMAND_TYPE_CANCEL_DELETION
	tDelete   = fsmpb.CommandType_COMMAND_TYPE_DELETE_KEY
	tRotOn    = fsmpb.CommandType_COMMAND_TYPE_ENABLE_ROTATION
	tRotOff   = fsmpb.CommandType_COMMAND_TYPE_DISABLE_ROTATION
	tRotate   = fsmpb.CommandType_COMMAND_TYPE_ROTATE_KEY
)

func TestCreateKey(t *testing.T) {
	withVersions := func(vs ...*fsmpb.KeyVersion) *fsmpb.Key {
		k := newKey("k-1", specSymmetric, usageEncrypt, 0)
		k.Versions = vs
		return k
	}
	withState := func(s fsmpb.KeyState) *fsmpb.Key {
		k := newKey("k-1", specSymmetric, usageEncrypt, 1)
		k.State = s
		return k
	}
	withRotation := func(days uint32) *fsmpb.Key {
		k := newKey("k-1", specSymmetric, usageEncrypt, 1)
		k.RotationPeriodDays = days
		return k
	}
	tests := []struct {
		name     string
		existing bool
		key      *fsmpb.Key
		want     string
	}{
		{"enabled", false, newKey("k-1", specSymmetric, usageEncrypt, 1), ""},
		{"disabled", false, withState(disabled), ""},
		{"three versions", false, newKey("k-1", specSymmetric, usageEncrypt, 3), ""},
		{"with rotation", false, withRotation(365), ""},
		{"id taken", true, newKey("k-1", specHMAC256, usageMAC, 1), CodeAlreadyExists},
		{"no key", false, nil, CodeInvalid},
		{"empty id", false, newKey("", specSymmetric, usageEncrypt, 1), CodeInvalid},
		{"pending state", false, withState(pending), CodeInvalid},
		{"unspecified state", false, withState(fsmpb.KeyState_KEY_STATE_UNSPECIFIED), CodeInvalid},
		{"no versions", false, withVersions(), CodeInvalid},
		{"version numbering", false, withVersions(newVersion(2)), CodeInvalid},
		{"empty material", false, withVersions(&fsmpb.KeyVersion{Version: 1}), CodeInvalid},
		{"rotation too long", false, withRotation(maxDays + 1), CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.existing {
				h.createKey("k-1")
			}
			before, _ := h.f.Key("k-1")
			res := h.apply(tCreate, &fsmpb.CreateKey{Key: tc.key})
			if res.GetErrorCode() != tc.want {
				t.Fatalf("code = %q (%s), want %q", res.GetErrorCode(), res.GetErrorMessage(), tc.want)
			}
			got, _ := h.f.Key("k-1")
			if tc.want != "" {
				if res.GetKey() != nil || got != before || res.GetErrorMessage() == "" {
					t.Fatalf("failed create changed state or returned a key: %v", res)
				}
				return
			}
			want := proto.Clone(tc.key).(*fsmpb.Key)
			want.CreatedUnixNano = t0.UnixNano()
			if want.RotationPeriodDays > 0 {
				want.NextRotationUnixNano = t0.Add(time.Duration(want.RotationPeriodDays) * 24 * time.Hour).UnixNano()
			}
			if !proto.Equal(got, want) || !proto.Equal(res.GetKey(), want) {
				t.Fatalf("stored %v\nresult %v\nwant %v", got, res.GetKey(), want)
			}
			if byBytes, ok := h.f.KeyBytes([]byte("k-1")); !ok || byBytes != got {
				t.Fatalf("KeyBytes(k-1) = %v, %v; want the record Key returns", byBytes, ok)
			}
			if h.f.KeyCount() != 1 || res.GetIndex() != h.index {
				t.Fatalf("count %d index %d", h.f.KeyCount(), res.GetIndex())
			}
		})
	}
}

// TestKeyStateRules walks every key command through every key state.
func TestKeyStateRules(t *testing.T) {
	ref := func(id string) proto.Message { return &fsmpb.KeyRef{KeyId: id} }
	sched := func(id string) proto.Message { return &fsmpb.ScheduleDeletion{KeyId: id, PendingWindowDays: 10} }
	rotOn := func(id string) proto.Message { return &fsmpb.EnableRotation{KeyId: id, PeriodDays: 90} }
	rotate := func(id string) proto.Message { return &fsmpb.RotateKey{KeyId: id, Version: newVersion(2)} }
	desc := func(id string) proto.Message { return &fsmpb.UpdateDescription{KeyId: id, Description: "new"} }
	tag := func(id string) proto.Message { return &fsmpb.TagKey{KeyId: id, Tags: map[string]string{"env": "prod"}} }
	untag := func(id string) proto.Message { return &fsmpb.UntagKey{KeyId: id, TagKeys: []string{"env"}} }

	const missing fsmpb.KeyState = -1
	tests := []struct {
		from    fsmpb.KeyState
		cmd     fsmpb.CommandType
		payload func(id string) proto.Message
		want    string
		check   func(t *testing.T, k *fsmpb.Key) // the key after a success
	}{
		{enabled, tEnable, ref, "", stateIs(enabled)},
		{disabled, tEnable, ref, "", stateIs(enabled)},
		{pending, tEnable, ref, CodeInvalidState, nil},
		{missing, tEnable, ref, CodeNotFound, nil},

		{enabled, tDisable, ref, "", stateIs(disabled)},
		{disabled, tDisable, ref, "", stateIs(disabled)},
		{pending, tDisable, ref, CodeInvalidState, nil},
		{missing, tDisable, ref, CodeNotFound, nil},

		{enabled, tSchedule, sched, "", scheduledIn(10)},
		{disabled, tSchedule, sched, "", scheduledIn(10)},
		{pending, tSchedule, sched, CodeInvalidState, nil},
		{missing, tSchedule, sched, CodeNotFound, nil},

		{enabled, tCancel, ref, CodeInvalidState, nil},
		{disabled, tCancel, ref, CodeInvalidState, nil},
		{pending, tCancel, ref, "", func(t *testing.T, k *fsmpb.Key) {
			stateIs(disabled)(t, k)
			if k.GetDeletionUnixNano() != 0 || k.GetPendingWindowDays() != 0 {
				t.Fatalf("deletion left set: %v", k)
			}
		}},
		{missing, tCancel, ref, CodeNotFound, nil},

		{enabled, tDelete, ref, CodeInvalidState, nil},
		{disabled, tDelete, ref, CodeInvalidState, nil},
		{pending, tDelete, ref, CodeInvalidState, nil}, // not due for 7 days
		{missing, tDelete, ref, CodeNotFound, nil},

		{enabled, tRotOn, rotOn, "", func(t *testing.T, k *fsmpb.Key) {
			if k.GetRotationPeriodDays() != 90 || k.GetNextRotationUnixNano() != t0.Add(90*24*time.Hour).UnixNano() {
				t.Fatalf("rotation = %d days next %d", k.GetRotationPeriodDays(), k.GetNextRotationUnixNano())
			}
		}},
		{disabled, tRotOn, rotOn, CodeDisabled, nil},
		{pending, tRotOn, rotOn, CodeInvalidState, nil},
		{missing, tRotOn, rotOn, CodeNotFound, nil},

		{enabled, tRotOff, ref, "", func(t *testing.T, k *fsmpb.Key) {
			if k.GetRotationPeriodDays() != 0 || k.GetNextRotationUnixNano() != 0 {
				t.Fatalf("rotation left on: %v", k)
			}
		}},
		{disabled, tRotOff, ref, CodeDisabled, nil},
		{pending, tRotOff, ref, CodeInvalidState, nil},
		{missing, tRotOff, ref, CodeNotFound, nil},

		{enabled, tRotate, rotate, "", func(t *testing.T, k *fsmpb.Key) {
			if len(k.GetVersions()) != 2 || k.GetVersions()[1].GetCreatedUnixNano() != t0.UnixNano() {
				t.Fatalf("versions = %v", k.GetVersions())
			}
		}},
		{disabled, tRotate, rotate, CodeDisabled, nil},
		{pending, tRotate, rotate, CodeInvalidState, nil},
		{missing, tRotate, rotate, CodeNotFound, nil},

		{enabled, tDesc, desc, "", func(t *testing.T, k *fsmpb.Key) {
			if k.GetDescription() != "new" {
				t.Fatalf("description = %q", k.GetDescription())
			}
		}},
		{disabled, tDesc, desc, "", stateIs(disabled)},
		{pending, tDesc, desc, CodeInvalidState, nil},
		{missing, tDesc, desc, CodeNotFound, nil},

		{enabled, tTag, tag, "", tagsAre(map[string]string{"env": "prod"})},
		{disabled, tTag, tag, "", tagsAre(map[string]string{"env": "prod"})},
		{pending, tTag, tag, CodeInvalidState, nil},
		{missing, tTag, tag, CodeNotFound, nil},

		{enabled, tUntag, untag, "", tagsAre(nil)},
		{disabled, tUntag, untag, "", tagsAre(nil)},
		{pending, tUntag, untag, CodeInvalidState, nil},
		{missing, tUntag, untag, CodeNotFound, nil},
	}
	for _, tc := range tests {
		name := tc.cmd.String()[len("COMMAND_TYPE_"):] + " on " + tc.from.String()
		if tc.from == missing {
			name = tc.cmd.String()[len("COMMAND_TYPE_"):] + " on missing key"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			if tc.from != missing {
				h.keyInState("k-1", tc.from)
			}
			before, _ := h.f.Key("k-1")
			var beforeCopy *fsmpb.Key
			if before != nil {
				beforeCopy = cloneKey(before)
			}
			res := h.apply(tc.cmd, tc.payload("k-1"))
			if res.GetErrorCode() != tc.want {
				t.Fatalf("code = %q (%s), want %q", res.GetErrorCode(), res.GetErrorMessage(), tc.want)
			}
			after, _ := h.f.Key("k-1")
			if tc.want != "" {
				if after != before || res.GetKey() != nil {
					t.Fatalf("failed command changed the key or returned one")
				}
				return
			}
			if !proto.Equal(res.GetKey(), after) {
				t.Fatalf("result key %v, stored %v", res.GetKey(), after)
			}
			if tc.check != nil {
				tc.check(t, after)
			}
			// A published record never changes in place.
			if !proto.Equal(before, beforeCopy) {
				t.Fatalf("the published record was mutated: %v", before)
			}
		})
	}

	// Every command that names a key refuses an empty id.
	for _, ct := range []fsmpb.CommandType{tEnable, tDisable, tCancel, tDelete, tRotOff} {
		h := newHarness(t)
		if res := h.apply(ct, &fsmpb.KeyRef{}); res.GetErrorCode() != CodeInvalid {
			t.Errorf("%s with empty id: %q", ct, res.GetErrorCode())
		}
	}
}

func stateIs(s fsmpb.KeyState) func(*testing.T, *fsmpb.Key) {
	return func(t *testing.T, k *fsmpb.Key) {
		t.Helper()
		if k.GetState() != s {
			t.Fatalf("state = %s, want %s", k.GetState(), s)
		}
	}
}

func scheduledIn(days uint32) func(*testing.T, *fsmpb.Key) {
	return func(t *testing.T, k *fsmpb.Key) {
		t.Helper()
		stateIs(pending)(t, k)
		want := t0.Add(time.Duration(days) * 24 * time.Hour).UnixNano()
		if k.GetDeletionUnixNano() != want || k.GetPendingWindowDays() != days {
			t.Fatalf("deletion %d window %d, want %d %d", k.GetDeletionUnixNano(), k.GetPendingWindowDays(), want, days)
		}
	}
}

func tagsAre(want map[string]string) func(*testing.T, *fsmpb.Key) {
	return func(t *testing.T, k *fsmpb.Key) {
		t.Helper()
		if len(k.GetTags()) != len(want) {
			t.Fatalf("tags = %v, want %v", k.GetTags(), want)
		}
		for n, v := range want {
			if k.GetTags()[n] != v {
				t.Fatalf("tags = %v, want %v", k.GetTags(), want)
			}
		}
	}
}

func TestOutOfRangeDays(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	for _, tc := range []struct {
		ct fsmpb.CommandType
		p  proto.Message
	}{
		{tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-1"}},
		{tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-1", PendingWindowDays: maxDays + 1}},
		{tRotOn, &fsmpb.EnableRotation{KeyId: "k-1"}},
		{tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: maxDays + 1}},
		{tRotate, &fsmpb.RotateKey{KeyId: "k-1"}},
	} {
		if res := h.apply(tc.ct, tc.p); res.GetErrorCode() != CodeInvalid {
			t.Errorf("%s %v: code %q, want Invalid", tc.ct, tc.p, res.GetErrorCode())
		}
	}
}

func TestTagsMergeAndDescription(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	h.mustApply(tTag, &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"a": "1", "b": "2"}})
	first := h.key("k-1")
	h.mustApply(tTag, &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"b": "3", "c": "4"}})
	tagsAre(map[string]string{"a": "1", "b": "3", "c": "4"})(t, h.key("k-1"))
	tagsAre(map[string]string{"a": "1", "b": "2"})(t, first) // the old record is untouched
	h.mustApply(tUntag, &fsmpb.UntagKey{KeyId: "k-1", TagKeys: []string{"a", "nope"}})
	tagsAre(map[string]string{"b": "3", "c": "4"})(t, h.key("k-1"))
	h.mustApply(tDesc, &fsmpb.UpdateDescription{KeyId: "k-1", Description: "payments"})
	if h.key("k-1").GetDescription() != "payments" {
		t.Fatal("description not stored")
	}
}

func TestDeleteKeyWhenDue(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	h.createKey("k-2")
	for _, a := range []string{"alias/one", "alias/two"} {
		h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: a, KeyId: "k-1"})
	}
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/other", KeyId: "k-2"})
	h.mustApply(tSchedule, &fsmpb.ScheduleDeletion{KeyId: "k-1", PendingWindowDays: 7})
	due := t0.Add(7 * 24 * time.Hour)

	if got := h.f.DueDeletions(due.Add(-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("due early: %v", got)
	}
	if got := h.f.DueDeletions(due); !slices.Equal(got, []string{"k-1"}) {
		t.Fatalf("due = %v", got)
	}
	h.now = due.Add(-time.Nanosecond)
	if res := h.apply(tDelete, &fsmpb.KeyRef{KeyId: "k-1"}); res.GetErrorCode() != CodeInvalidState {
		t.Fatalf("early delete: %q", res.GetErrorCode())
	}
	h.now = due
	res := h.mustApply(tDelete, &fsmpb.KeyRef{KeyId: "k-1"})
	if res.GetKey() != nil {
		t.Fatalf("deletion result carries a key")
	}
	if _, ok := h.f.Key("k-1"); ok {
		t.Fatal("key still there")
	}
	for _, a := range []string{"alias/one", "alias/two"} {
		if _, ok := h.f.Alias(a); ok {
			t.Fatalf("%s survived its key", a)
		}
	}
	if _, ok := h.f.Alias("alias/other"); !ok {
		t.Fatal("another key's alias was removed")
	}
	if got, _ := h.f.Aliases("k-1", "", 0); len(got) != 0 {
		t.Fatalf("alias index still lists %v", got)
	}
	if got := h.f.DueDeletions(due.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("deleted key still due: %v", got)
	}
	if h.f.KeyCount() != 1 {
		t.Fatalf("count = %d", h.f.KeyCount())
	}
	if res := h.apply(tDelete, &fsmpb.KeyRef{KeyId: "k-1"}); res.GetErrorCode() != CodeNotFound {
		t.Fatalf("second delete: %q", res.GetErrorCode())
	}
}

func TestCancelDeletionLeavesDueList(t *testing.T) {
	h := newHarness(t)
	h.keyInState("k-1", pending)
	h.mustApply(tCancel, &fsmpb.KeyRef{KeyId: "k-1"})
	if got := h.f.DueDeletions(t0.Add(365 * 24 * time.Hour)); len(got) != 0 {
		t.Fatalf("cancelled key still due: %v", got)
	}
}

func TestRotation(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	h.createKey("k-2")
	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "k-1", PeriodDays: 90})
	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "k-2", PeriodDays: 100})
	day90, day100 := t0.Add(90*24*time.Hour), t0.Add(100*24*time.Hour)

	if got := h.f.DueRotations(day90.Add(-1)); len(got) != 0 {
		t.Fatalf("due early: %v", got)
	}
	if got := h.f.DueRotations(day100); !slices.Equal(got, []string{"k-1", "k-2"}) {
		t.Fatalf("due = %v, want soonest first", got)
	}

	// The leader rotates k-1 when due: the next rotation moves on.
	h.now = day90
	res := h.mustApply(tRotate, &fsmpb.RotateKey{KeyId: "k-1", Version: newVersion(2)})
	if n := len(res.GetKey().GetVersions()); n != 2 {
		t.Fatalf("versions = %d", n)
	}
	if got := h.key("k-1").GetNextRotationUnixNano(); got != day90.Add(90*24*time.Hour).UnixNano() {
		t.Fatalf("next rotation = %v", time.Unix(0, got))
	}
	if got := h.f.DueRotations(day100); !slices.Equal(got, []string{"k-2"}) {
		t.Fatalf("due after rotation = %v", got)
	}

	// A concurrent rotation that lost the race, or a gap, is a Conflict.
	for _, v := range []int{1, 2, 4} {
		res := h.apply(tRotate, &fsmpb.RotateKey{KeyId: "k-1", Version: newVersion(v)})
		if res.GetErrorCode() != CodeConflict {
			t.Fatalf("rotate to v%d: %q", v, res.GetErrorCode())
		}
	}
	h.mustApply(tRotate, &fsmpb.RotateKey{KeyId: "k-1", Version: newVersion(3)})

	// Disabled keys are not rotated; enabling brings them back.
	h.mustApply(tDisable, &fsmpb.KeyRef{KeyId: "k-2"})
	if got := h.f.DueRotations(day100); len(got) != 0 {
		t.Fatalf("disabled key due: %v", got)
	}
	h.mustApply(tEnable, &fsmpb.KeyRef{KeyId: "k-2"})
	if got := h.f.DueRotations(day100); !slices.Equal(got, []string{"k-2"}) {
		t.Fatalf("re-enabled key not due: %v", got)
	}
	h.mustApply(tRotOff, &fsmpb.KeyRef{KeyId: "k-2"})
	if got := h.f.DueRotations(day100.Add(1000 * 24 * time.Hour)); len(got) != 1 || got[0] != "k-1" {
		t.Fatalf("rotation off still due: %v", got)
	}

	// On-demand rotation of a key without automatic rotation leaves it off.
	h.createKey("k-3")
	h.mustApply(tRotate, &fsmpb.RotateKey{KeyId: "k-3", Version: newVersion(2)})
	if k := h.key("k-3"); k.GetNextRotationUnixNano() != 0 || k.GetRotationPeriodDays() != 0 {
		t.Fatalf("on-demand rotation turned rotation on: %v", k)
	}
}
