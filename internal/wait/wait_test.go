package wait

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheCheckHolds(t *testing.T) {
	n := 0
	if err := For(5*time.Second, 0, func() bool { n++; return n == 3 }); err != nil {
		t.Fatalf("For: %v", err)
	}
	if n != 3 {
		t.Errorf("check ran %d times, want 3", n)
	}
}

func TestUntilReportsTheLastState(t *testing.T) {
	n := 0
	err := For(30*time.Millisecond, 0, func() error { n++; return errors.New("state " + string(rune('0'+min(n, 9)))) })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last: state") {
		t.Fatalf("err = %v, want a deadline naming the last state", err)
	}
	if bools := For(10*time.Millisecond, 0, func() bool { return false }); !strings.Contains(bools.Error(), "condition not met") {
		t.Errorf("bool check timeout = %v", bools)
	}
}

func TestStopEndsTheWait(t *testing.T) {
	gone := errors.New("exited")
	start := time.Now()
	err := For(10*time.Second, 0, func() error { return Stop(gone) })
	if !errors.Is(err, gone) || time.Since(start) > time.Second {
		t.Fatalf("err = %v after %v, want %v at once", err, time.Since(start), gone)
	}
}
