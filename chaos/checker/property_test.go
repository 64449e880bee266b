package checker

import (
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

func TestRandomSequentialHistoriesPass(t *testing.T) {
	for seed := range uint64(100) {
		h := generate(genConfig{clients: 1, ops: 200, keys: 3, aliases: 2, seed: seed})
		if v := mustCheck(t, h, nil, testOptions()); !v.Passed() {
			t.Fatalf("seed %d: valid sequential history rejected: %s", seed, v)
		}
	}
}

func TestRandomConcurrentHistoriesPass(t *testing.T) {
	for seed := range uint64(60) {
		h := generate(genConfig{clients: 6, ops: 300, keys: 4, aliases: 2, unknown: 0.1, seed: seed})
		if v := mustCheck(t, h, nil, testOptions()); !v.Passed() {
			t.Fatalf("seed %d: valid concurrent history rejected: %s", seed, v)
		}
	}
}

// TestRandomCorruptionFails bumps one read's version where nothing could
// explain it: no unknown op on the key and no write overlapping the read.
func TestRandomCorruptionFails(t *testing.T) {
	caught := 0
	for seed := range uint64(60) {
		h := generate(genConfig{clients: 6, ops: 300, keys: 4, aliases: 2, unknown: 0.05, seed: seed})
		i := corruptible(h)
		if i < 0 {
			continue
		}
		h.Ops[i].Output.KeyVersion++
		v := mustCheck(t, h, nil, testOptions())
		if v.Linearizability.Result != Fail {
			t.Fatalf("seed %d: corrupted read #%d passed: %s", seed, i, v)
		}
		caught++
	}
	if caught < 30 {
		t.Fatalf("only %d of 60 histories had a corruptible read", caught)
	}
}

func corruptible(h *history.History) int {
	doubtful := map[string]bool{}
	for _, op := range h.Ops {
		if op.Outcome == history.Unknown {
			doubtful[op.KeyID] = true
		}
	}
	for i, d := range h.Ops {
		if d.Kind != history.DescribeKey || d.Outcome != history.Ok || doubtful[d.KeyID] {
			continue
		}
		overlap := false
		for _, w := range h.Ops {
			if w.Kind.IsWrite() && (w.KeyID == d.KeyID || w.Output.KeyID == d.KeyID) &&
				w.Invoke <= d.Complete && d.Invoke <= w.Complete {
				overlap = true
			}
		}
		if !overlap {
			return i
		}
	}
	return -1
}

func TestLargeHistory(t *testing.T) {
	h := generate(genConfig{clients: 16, ops: 10000, keys: 100, aliases: 10, unknown: 0.02, seed: 1})
	start := time.Now()
	v := mustCheck(t, h, nil, testOptions())
	if !v.Passed() {
		t.Fatalf("valid history rejected: %s", v)
	}
	t.Logf("10,000 ops, 100 keys, 16 clients: %v (%v)", time.Since(start), v.Linearizability.Notes)
}

func BenchmarkCheck10k(b *testing.B) {
	cases := []struct {
		name string
		cfg  genConfig
	}{
		{"16clients-2pct-unknown", genConfig{clients: 16, ops: 10000, keys: 100, aliases: 10, unknown: 0.02, seed: 1}},
		{"64clients-10pct-unknown", genConfig{clients: 64, ops: 10000, keys: 100, aliases: 10, unknown: 0.10, seed: 2}},
		{"64clients-10keys-5pct-unknown", genConfig{clients: 64, ops: 10000, keys: 10, aliases: 3, unknown: 0.05, seed: 3}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := generate(c.cfg)
			opt := testOptions()
			for b.Loop() {
				if v := CheckLinearizable(h, opt); v.Result != Pass {
					b.Fatalf("valid history rejected: %+v", v)
				}
				if v := CheckStaleness(h, opt); v.Result != Pass {
					b.Fatalf("staleness: %+v", v)
				}
			}
		})
	}
}
