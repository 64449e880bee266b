package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

// fakeFault is a fault whose injection fails when err is set.
type fakeFault struct {
	name string
	err  error
}

func (f *fakeFault) Name() string                          { return f.name }
func (f *fakeFault) Needs() Capability                     { return 0 }
func (f *fakeFault) Inject(context.Context, Harness) error { return f.err }
func (f *fakeFault) Heal(context.Context, Harness) error   { return nil }

// TestScheduleLogSaysOK: the line per fault says "ok", or the error,
// never "<nil>".
func TestScheduleLogSaysOK(t *testing.T) {
	var lines []string
	opt := Options{Duration: 50 * time.Millisecond, Harness: &stub{},
		Logf: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }}
	s := Schedule{
		{At: 0, For: 10 * time.Millisecond, Fault: &fakeFault{name: "kill-leader(node-1)"}},
		{At: 20 * time.Millisecond, For: 10 * time.Millisecond, Fault: &fakeFault{name: "freeze-node(node-2)", err: errors.New("no such process")}},
	}
	events := runSchedule(context.Background(), opt, s, history.NewRecorder(), newLive(nil), time.Now())
	all := strings.Join(lines, "\n")
	for _, w := range []string{"inject kill-leader(node-1): ok", "heal kill-leader(node-1): ok",
		"inject freeze-node(node-2): failed: no such process"} {
		if !strings.Contains(all, w) {
			t.Errorf("log lacks %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "<nil>") {
		t.Errorf("log says <nil>:\n%s", all)
	}
	if len(events) != 2 || events[0].Error != "" || events[1].Error != "inject: no such process" {
		t.Errorf("events %+v", events)
	}
}
