package keystore

import (
	"testing"
	"time"

	"github.com/meridiankms/meridian/internal/testwait"
)

// The background loop deletes keys and rotates them when their dates pass
// on the injected clock, and only on the leader.
func TestSchedulerDeletesAndRotatesWhenDue(t *testing.T) {
	h := newHarness(t, Config{SchedulerInterval: 5 * time.Millisecond})
	h.ap.leader.Store(false)
	doomed, rotating, kept := h.create("", ""), h.create("", ""), h.create("", "")
	_, err := h.s.CreateAlias(bg, "alias/doomed", doomed.KeyID)
	must(t, err)
	_, err = h.s.ScheduleKeyDeletion(bg, doomed.KeyID, 7)
	must(t, err)
	_, err = h.s.EnableKeyRotation(bg, rotating.KeyID, 90)
	must(t, err)
	old, err := h.s.Encrypt(bg, EncryptInput{KeyID: rotating.KeyID, Plaintext: []byte("before")})
	must(t, err)

	// Not yet due: nothing happens even on the leader.
	h.ap.leader.Store(true)
	must(t, h.s.RunDueTasks(bg))
	if _, ok := h.fsm.Key(doomed.KeyID); !ok {
		t.Fatal("key deleted before its date")
	}

	// Due, but this node is a follower: nothing happens.
	h.ap.leader.Store(false)
	h.clock.Advance(8 * 24 * time.Hour)
	must(t, h.s.RunDueTasks(bg))
	if _, ok := h.fsm.Key(doomed.KeyID); !ok {
		t.Fatal("a follower deleted a key")
	}

	h.ap.leader.Store(true)
	testwait.Eventually(t, 10*time.Second, "scheduled deletion", func() bool { _, ok := h.fsm.Key(doomed.KeyID); return !ok })
	if _, ok := h.fsm.Alias("alias/doomed"); ok {
		t.Fatal("alias of a deleted key survived")
	}
	if _, err := h.s.DescribeKey(bg, doomed.KeyID); err == nil {
		t.Fatal("deleted key still described")
	}

	h.clock.Advance(90 * 24 * time.Hour)
	testwait.Eventually(t, 10*time.Second, "automatic rotation", func() bool {
		m, _ := h.s.DescribeKey(bg, rotating.KeyID)
		return m.CurrentVersion == 2
	})
	p, err := h.s.ListKeyRotations(bg, rotating.KeyID, 0, "")
	must(t, err)
	if len(p.Items) != 1 || p.Items[0].RotationType != RotationAutomatic {
		t.Fatalf("rotations %+v", p.Items)
	}
	st, _ := h.s.GetKeyRotationStatus(bg, rotating.KeyID)
	if !st.NextRotationDate.After(h.clock.Now()) {
		t.Fatalf("next rotation %v is not after now %v", st.NextRotationDate, h.clock.Now())
	}
	if d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: old.CiphertextBlob}); err != nil || string(d.Plaintext) != "before" {
		t.Fatalf("pre-rotation blob: %v", err)
	}
	if m, _ := h.s.DescribeKey(bg, kept.KeyID); m.CurrentVersion != 1 || m.KeyState != StateEnabled {
		t.Fatalf("untouched key changed: %+v", m)
	}
	must(t, h.s.Close())
	must(t, h.s.Close()) // idempotent
}
