package fsm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// requestMemory is how long a request id is remembered, by command time.
// A client retrying after an ambiguous failure does so within seconds; a
// day leaves room for a long partition without keeping ids forever.
const requestMemory = 24 * time.Hour

// FSM is the replicated state of one node. Apply (run on raft's FSM
// goroutine, through the cluster's adapter: this package knows nothing of
// raft) publishes a new immutable state per entry; reads load the published
// state without a lock and may run concurrently with Apply.
type FSM struct {
	logger *slog.Logger

	// mu serialises the writers: Apply and Restore. Raft never runs them
	// together, but the lock makes that an invariant rather than a hope.
	mu sync.Mutex
	st atomic.Pointer[state]

	applied atomic.Uint64
	waitMu  sync.Mutex
	waitCh  chan struct{} // closed and replaced each time applied moves

	subMu sync.RWMutex
	subs  []func(keyID string)
}

// New returns an empty FSM. logger may be nil.
func New(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{logger: logger, waitCh: make(chan struct{})}
	f.st.Store(emptyState())
	return f
}

// Apply applies one committed log entry, given by its index and bytes, and
// returns its Result. Domain failures (missing key, wrong state, ...) are
// Results with an error code; an entry that cannot be decoded, or an unknown
// command not flagged ignore_if_unknown (exactly what CheckCommand reports),
// panics: applying around it would let this node diverge from the others
// silently.
func (f *FSM) Apply(index uint64, data []byte) *fsmpb.Result {
	res, touched := f.apply(index, data)
	f.notify(touched)
	return res
}

func (f *FSM) apply(index uint64, data []byte) (*fsmpb.Result, []string) {
	cmd, err := DecodeCommand(data)
	var run applier
	if err == nil {
		run, err = prepare(cmd)
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: log entry %d cannot be applied: %v", index, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()

	tx := newTxn(f.st.Load())
	tx.index = index
	tx.now = cmd.GetTimeUnixNano()
	tx.pruneRequests(tx.now - int64(requestMemory))

	res := f.dispatch(tx, cmd, run)
	if res.GetIndex() == 0 {
		res.Index = index
	}
	f.st.Store(tx.commit())
	f.advance(index)
	return res, tx.touched
}

// dispatch runs cmd's applier, answers a retried request with the Result of
// its first application, or skips cmd when run is nil (an unknown command
// flagged ignore_if_unknown, as prepare decided).
func (f *FSM) dispatch(tx *txn, cmd *fsmpb.Command, run applier) *fsmpb.Result {
	if id := cmd.GetRequestId(); id != "" {
		if r, ok := tx.requests.get(id); ok {
			return r.GetResult()
		}
	}
	if run == nil {
		f.logger.Warn("skipping unknown command flagged ignore_if_unknown",
			"index", tx.index, "type", int32(cmd.GetType()), "version", cmd.GetVersion())
		return &fsmpb.Result{}
	}
	res := run(tx)
	res.Index = tx.index
	if id := cmd.GetRequestId(); id != "" {
		tx.putRequest(&fsmpb.AppliedRequest{RequestId: id, TimeUnixNano: tx.now, Result: res})
	}
	return res
}

// advance publishes a new applied index and wakes every WaitApplied. The
// index is stored before the channel swap, so a waiter that picks up the new
// channel is sure to see the new index.
func (f *FSM) advance(index uint64) {
	f.applied.Store(index)
	f.waitMu.Lock()
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.waitMu.Unlock()
}

// AppliedIndex is the index of the last log entry applied (or of the
// snapshot last restored).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// WaitApplied returns once AppliedIndex() >= index, or ctx's error (wrapped)
// when ctx ends first.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", index, f.applied.Load(), ctx.Err())
		}
	}
}

// Subscribe registers fn to run synchronously after each Apply that changed
// a key (with its id) and after each Restore (with ""). A domain-key
// re-wrap (REWRAP_VERSIONS) is the exception: it changes only how a
// version's unchanged material is wrapped, so it notifies no one. fn runs
// on raft's apply goroutine, so it must be cheap and must not call Apply.
func (f *FSM) Subscribe(fn func(keyID string)) {
	f.subMu.Lock()
	f.subs = append(f.subs, fn)
	f.subMu.Unlock()
}

func (f *FSM) notify(keyIDs []string) {
	if len(keyIDs) == 0 {
		return
	}
	f.subMu.RLock()
	subs := f.subs
	f.subMu.RUnlock()
	for _, id := range keyIDs {
		for _, fn := range subs {
			fn(id)
		}
	}
}
