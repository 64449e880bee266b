package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func TestWaitAppliedWakesOnApply(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- h.f.WaitApplied(ctx, 3) }()
	h.createKey("k-1")
	h.createKey("k-2")
	select {
	case err := <-done:
		t.Fatalf("returned at index %d: %v", h.f.AppliedIndex(), err)
	default:
	}
	h.createKey("k-3")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Already applied: immediate.
	if err := h.f.WaitApplied(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

func TestWaitAppliedHonoursContext(t *testing.T) {
	f := New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(ctx, 1) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	if err := f.WaitApplied(dctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitAppliedWakesOnRestore(t *testing.T) {
	src := newHarness(t)
	for i := range 5 {
		src.createKey(fmt.Sprint("k-", i))
	}
	snap := snapshotBytes(t, src.f)

	f := New(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = f.WaitApplied(ctx, 5) })
	}
	if err := f.Restore(readCloser(snap)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentReads reads while Apply runs; -race checks the sharing, the
// assertions check each read sees one consistent version.
func TestConcurrentReads(t *testing.T) {
	h := newHarness(t)
	h.createKey("hot")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	fail := make(chan string, 4)
	reader := func(check func() string) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if msg := check(); msg != "" {
					fail <- msg
					return
				}
			}
		})
	}
	reader(func() string {
		keys, _ := h.f.Keys("", 0)
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = k.GetId()
		}
		if !slices.IsSorted(ids) {
			return "keys out of order"
		}
		return ""
	})
	reader(func() string {
		k, ok := h.f.Key("hot")
		if !ok {
			return "hot key missing"
		}
		for i, v := range k.GetVersions() { // versions are appended, never edited
			if v.GetVersion() != uint32(i+1) {
				return "torn versions"
			}
		}
		_ = len(k.GetTags())
		return ""
	})
	reader(func() string {
		_, _ = h.f.Aliases("hot", "", 0)
		_ = h.f.DueRotations(t0.Add(1000 * time.Hour))
		_ = h.f.Nodes()
		return ""
	})
	reader(func() string {
		var buf bytes.Buffer
		if err := h.f.Snapshot().Persist(&buf); err != nil {
			return err.Error()
		}
		return ""
	})

	h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: "hot", PeriodDays: 90})
	for i := range 300 {
		id := fmt.Sprintf("k-%04d", i)
		h.createKey(id)
		h.mustApply(tRotate, &fsmpb.RotateKey{KeyId: "hot", Version: newVersion(i + 2)})
		h.mustApply(tTag, &fsmpb.TagKey{KeyId: "hot", Tags: map[string]string{id: "x"}})
		h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/" + id, KeyId: "hot"})
		h.now = h.now.Add(time.Hour)
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-fail:
		t.Fatal(msg)
	default:
	}
}
