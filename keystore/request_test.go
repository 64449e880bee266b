package keystore

import (
	"context"
	"testing"
)

func TestRequestOnContext(t *testing.T) {
	if r := RequestFrom(bg); r != (Request{}) {
		t.Fatalf("bare context carries %+v, want the zero Request", r)
	}
	ctx := WithRequest(bg, Request{ID: "a"})
	if r := RequestFrom(ctx); r.ID != "a" {
		t.Fatalf("RequestFrom = %+v, want ID a", r)
	}
	if r := RequestFrom(WithRequest(ctx, Request{ID: "b"})); r.ID != "b" {
		t.Fatalf("a later WithRequest gave %+v, want ID b", r)
	}
	if r := RequestFrom(context.WithoutCancel(ctx)); r.ID != "a" {
		t.Fatalf("derived context lost the Request: %+v", r)
	}
}

// requestWrites is every write of Service, in an order that lets each one
// succeed on k (other: a second key of the same spec).
func requestWrites(h *harness, k, other string) []struct {
	name string
	do   func(ctx context.Context) (uint64, error)
} {
	wr := func(r WriteResult, err error) (uint64, error) { return r.CommitIndex, err }
	return []struct {
		name string
		do   func(ctx context.Context) (uint64, error)
	}{
		{"CreateKey", func(ctx context.Context) (uint64, error) {
			_, r, err := h.s.CreateKey(ctx, CreateKeyInput{})
			return r.CommitIndex, err
		}},
		{"UpdateKeyDescription", func(ctx context.Context) (uint64, error) { return wr(h.s.UpdateKeyDescription(ctx, k, "d")) }},
		{"TagResource", func(ctx context.Context) (uint64, error) {
			return wr(h.s.TagResource(ctx, k, []Tag{{Key: "a", Value: "1"}}))
		}},
		{"UntagResource", func(ctx context.Context) (uint64, error) { return wr(h.s.UntagResource(ctx, k, []string{"a"})) }},
		{"CreateAlias", func(ctx context.Context) (uint64, error) { return wr(h.s.CreateAlias(ctx, "alias/req", k)) }},
		{"UpdateAlias", func(ctx context.Context) (uint64, error) { return wr(h.s.UpdateAlias(ctx, "alias/req", other)) }},
		{"DeleteAlias", func(ctx context.Context) (uint64, error) { return wr(h.s.DeleteAlias(ctx, "alias/req")) }},
		{"EnableKeyRotation", func(ctx context.Context) (uint64, error) { return wr(h.s.EnableKeyRotation(ctx, k, 0)) }},
		{"DisableKeyRotation", func(ctx context.Context) (uint64, error) { return wr(h.s.DisableKeyRotation(ctx, k)) }},
		{"RotateKeyOnDemand", func(ctx context.Context) (uint64, error) {
			_, r, err := h.s.RotateKeyOnDemand(ctx, k)
			return r.CommitIndex, err
		}},
		{"DisableKey", func(ctx context.Context) (uint64, error) { return wr(h.s.DisableKey(ctx, k)) }},
		{"EnableKey", func(ctx context.Context) (uint64, error) { return wr(h.s.EnableKey(ctx, k)) }},
		{"ScheduleKeyDeletion", func(ctx context.Context) (uint64, error) {
			r, err := h.s.ScheduleKeyDeletion(ctx, k, 7)
			return r.CommitIndex, err
		}},
		{"CancelKeyDeletion", func(ctx context.Context) (uint64, error) { return wr(h.s.CancelKeyDeletion(ctx, k)) }},
	}
}

// Every write takes its idempotency id from the context's Request: a bad
// one is refused before anything is proposed, and a retry with the same one
// answers with the first attempt's result instead of applying again.
func TestEveryWriteTakesTheRequestID(t *testing.T) {
	h := newHarness(t, Config{})
	k, other := h.create("", "").KeyID, h.create("", "").KeyID
	writes := requestWrites(h, k, other)

	before := h.fsm.AppliedIndex()
	for _, w := range writes {
		_, err := w.do(WithRequest(bg, Request{ID: "a b"}))
		wantErr(t, err, ErrValidation, "request id")
	}
	if got := h.fsm.AppliedIndex(); got != before {
		t.Fatalf("refused writes moved the applied index from %d to %d", before, got)
	}

	for _, w := range writes {
		ctx := WithRequest(bg, Request{ID: "req-" + w.name})
		first, err := w.do(ctx)
		must(t, err)
		again, err := w.do(ctx)
		must(t, err)
		if first == 0 || again != first {
			t.Errorf("%s retried with its request id: commit index %d, then %d; want the first answer again", w.name, first, again)
		}
	}
	if n := h.fsm.KeyCount(); n != 3 {
		t.Fatalf("%d keys after one CreateKey retried, want 3", n)
	}
}
