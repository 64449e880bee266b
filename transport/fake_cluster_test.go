package transport

import (
	"context"
	"fmt"
	"sync"
)

// fakeMembership serves a view the test sets; when store is set, each call
// is recorded there and takes its injected error, panic or block.
type fakeMembership struct {
	store *fakeStore
	mu    sync.Mutex
	view  MembersView
	err   error
}

var _ Membership = (*fakeMembership)(nil)

func newFakeMembership(store *fakeStore) *fakeMembership {
	return &fakeMembership{store: store, view: MembersView{
		Members: []Member{
			{NodeID: "n1", Region: "us-east", Zone: "us-east-1a", APIAddr: "10.0.0.1:7400", Role: RoleVoter, Leader: true,
				Status: StatusAlive, Healthy: true, BuildVersion: "v1.2.3"},
			{NodeID: "n2", Region: "eu-west", Zone: "eu-west-1b", APIAddr: "10.0.1.1:7400", Role: RoleNonvoter,
				Status: StatusSuspect, BuildVersion: "v1.2.3"},
			{NodeID: "n3", Region: "eu-west", APIAddr: "10.0.1.2:7400", Role: RoleNone, Status: StatusDead},
		},
		LeaderID: "n1", ServedBy: "n2", AppliedIndex: 77,
	}}
}

func (m *fakeMembership) set(fn func(m *fakeMembership)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}

func (m *fakeMembership) Members(ctx context.Context) (MembersView, error) {
	if m.store != nil {
		if err := m.store.enter(ctx, "Members", nil); err != nil {
			return MembersView{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.view
	v.Members = append([]Member(nil), m.view.Members...)
	return v, m.err
}

// fakeWaiter is an AppliedWaiter whose applied index the test moves, so a
// waiting call can be released exactly when the test chooses.
type fakeWaiter struct {
	mu      sync.Mutex
	applied uint64
	changed chan struct{} // closed and replaced on every advance
	waiting int           // WaitApplied calls blocked right now
	calls   int           // WaitApplied calls ever made
}

var _ AppliedWaiter = (*fakeWaiter)(nil)

func newFakeWaiter(applied uint64) *fakeWaiter {
	return &fakeWaiter{applied: applied, changed: make(chan struct{})}
}

func (w *fakeWaiter) AppliedIndex() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

func (w *fakeWaiter) advance(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = index
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *fakeWaiter) blocked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting
}

func (w *fakeWaiter) numCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

func (w *fakeWaiter) WaitApplied(ctx context.Context, index uint64) error {
	w.mu.Lock()
	w.calls++
	w.waiting++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiting--
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		applied, ch := w.applied, w.changed
		w.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", index, applied, ctx.Err())
		}
	}
}
