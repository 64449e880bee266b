// Package wait is the one polling loop of Meridian's tests and in-process
// harnesses: call a check until it holds, or until the context ends, and
// then say what was last seen. It imports no testing code, so harness code
// linked into the binary (node.StartLocal, which chaos/inproc starts its
// nodes with, and chaos/proc) uses it too; tests use testwait.Eventually,
// built on it.
package wait

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Check is a condition: a func() bool (true when it holds) or a
// func() error (nil when it holds; the error describes the state seen
// otherwise, and is what a timeout reports).
type Check interface {
	func() bool | func() error
}

// errNotYet is the state a bool check reports while it does not hold.
var errNotYet = errors.New("condition not met")

// Backoff is the polling period: the first retry comes after Min, each
// later one waits twice as long up to Max, so a condition that holds at
// once costs nothing and a slow one does not burn a shared CPU.
const (
	Min = 5 * time.Millisecond
	Max = 50 * time.Millisecond
)

// Until calls check until it holds (nil) or ctx ends; then it returns an
// error wrapping ctx's and carrying check's last state. A check error made
// by Stop ends the wait at once with that error (a process that exited
// will never become ready). every > 0 polls at that fixed period instead
// of the backoff (timing measurements).
func Until[C Check](ctx context.Context, every time.Duration, check C) error {
	period := Min
	if every > 0 {
		period = every
	}
	for {
		last := run(check)
		if last == nil {
			return nil
		}
		if s, ok := errors.AsType[stopError](last); ok {
			return s.err
		}
		t := time.NewTimer(period)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
		if every <= 0 {
			period = min(2*period, Max)
		}
	}
}

// For is Until bounded by d instead of a context.
func For[C Check](d time.Duration, every time.Duration, check C) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Until(ctx, every, check)
}

// Stop marks err as final: Until returns it at once instead of retrying.
func Stop(err error) error { return stopError{err} }

type stopError struct{ err error }

func (s stopError) Error() string { return s.err.Error() }
func (s stopError) Unwrap() error { return s.err }

func run[C Check](check C) error {
	switch c := any(check).(type) {
	case func() bool:
		if c() {
			return nil
		}
		return errNotYet
	case func() error:
		return c()
	}
	panic(fmt.Sprintf("wait: unsupported check type %T", check))
}
