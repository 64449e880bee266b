package keystore

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMaxStalenessValidationAndDescribe(t *testing.T) {
	h := newHarness(t, Config{})
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 999 * time.Millisecond, 30*24*time.Hour + time.Millisecond, 365 * 24 * time.Hour} {
		_, _, err := h.s.CreateKey(bg, CreateKeyInput{MaxStaleness: d})
		wantErr(t, err, ErrValidation, "max staleness is "+d.String()+"; must be 0 (no bound) or 1s to 720h0m0s (30 days)")
	}
	for _, d := range []time.Duration{0, time.Second, 1500 * time.Millisecond, 2 * time.Second, 30 * 24 * time.Hour} {
		m, _, err := h.s.CreateKey(bg, CreateKeyInput{MaxStaleness: d})
		must(t, err)
		if m.MaxStaleness != d {
			t.Fatalf("CreateKey(max staleness %v) returned %v", d, m.MaxStaleness)
		}
		got, err := h.s.DescribeKey(bg, m.KeyID)
		must(t, err)
		if got.MaxStaleness != d {
			t.Fatalf("DescribeKey of a key made with max staleness %v: %v", d, got.MaxStaleness)
		}
		if k, _ := h.fsm.Key(m.KeyID); k.GetMaxStalenessMs() != d.Milliseconds() {
			t.Fatalf("replicated max_staleness_ms = %d, want %d", k.GetMaxStalenessMs(), d.Milliseconds())
		}
	}
}

// staleClock is an injected Config.Staleness.
type staleClock struct{ age atomic.Int64 }

func (c *staleClock) Staleness() time.Duration { return time.Duration(c.age.Load()) }
func (c *staleClock) set(d time.Duration)      { c.age.Store(int64(d)) }

func TestStaleNodeRefusesBoundedKeys(t *testing.T) {
	stale := &staleClock{}
	h := newHarness(t, Config{NodeID: "n-eu-1", Staleness: stale.Staleness})
	bounded := makeKeySetWith(t, h, func(spec KeySpec, usage KeyUsage) KeyMetadata {
		m, _, err := h.s.CreateKey(bg, CreateKeyInput{KeySpec: spec, KeyUsage: usage, MaxStaleness: 2 * time.Second})
		must(t, err)
		return m
	})
	free := makeKeySet(t, h)
	boundedOps, freeOps := cryptoOps(h, bounded), cryptoOps(h, free)
	boundedOps["DescribeKey"] = func() error { _, err := h.s.DescribeKey(bg, bounded.sym.KeyID); return err }
	// The source is unbounded, the destination bounded: either bound counts.
	boundedOps["ReEncrypt to a bounded key"] = func() error {
		_, err := h.s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: free.blob, DestinationKeyID: bounded.sym.KeyID})
		return err
	}

	runAll := func(what string, ops map[string]func() error, check func(name string, err error)) {
		t.Helper()
		for name, op := range ops {
			check(what+" "+name, op())
		}
	}
	ok := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	for _, age := range []time.Duration{0, time.Second, 2 * time.Second} {
		stale.set(age)
		runAll("bounded key at age "+age.String(), boundedOps, ok)
	}

	stale.set(3216 * time.Millisecond)
	for name, op := range boundedOps {
		err := op()
		wantErr(t, err, ErrUnavailable, "node n-eu-1 is stale: last leader contact 3.2s ago exceeds key ")
		if !strings.Contains(err.Error(), "'s max staleness 2s") {
			t.Fatalf("%s: %q does not give the bound", name, err)
		}
	}
	runAll("unbounded key while stale", freeOps, ok)

	stale.set(-1)
	for name, op := range boundedOps {
		if err := op(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "has not heard from a Raft leader") {
			t.Fatalf("%s on a node that never heard from a leader: %v", name, err)
		}
	}
	runAll("unbounded key, never contacted", freeOps, ok)

	// Staleness is judged before the key's state: a stale node's "disabled"
	// may itself be stale. Control-plane writes go through Raft and are
	// not refused here.
	_, err := h.s.DisableKey(bg, bounded.sym.KeyID)
	must(t, err)
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: bounded.sym.KeyID, Plaintext: []byte("x")})
	wantErr(t, err, ErrUnavailable, "is stale")
	stale.set(0)
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: bounded.sym.KeyID, Plaintext: []byte("x")})
	wantErr(t, err, ErrDisabled, "is disabled")
}

func TestNilStalenessIsNeverStale(t *testing.T) {
	h := newHarness(t, Config{})
	m, _, err := h.s.CreateKey(bg, CreateKeyInput{MaxStaleness: time.Second})
	must(t, err)
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: m.KeyID, Plaintext: []byte("x")})
	must(t, err)
}
