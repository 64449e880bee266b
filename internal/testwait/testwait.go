// Package testwait is the one polling helper of every package's tests,
// Eventually: tests never sleep waiting for a state, and a timeout says
// what was awaited and what was last seen.
package testwait

import (
	"testing"
	"time"

	"github.com/meridiankms/meridian/internal/wait"
)

// Eventually polls check (a func() bool or a func() error, see wait.Check)
// until it holds, and fails the test if within passes first, naming what
// it waited for and the last state check reported.
func Eventually[C wait.Check](t testing.TB, within time.Duration, what string, check C) {
	t.Helper()
	if err := wait.For(within, 0, check); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
	}
}
