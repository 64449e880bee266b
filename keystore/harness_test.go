package keystore

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/hsm/soft"
)

// testApplier replaces Raft (the cluster tests cover it): it encodes each
// command and applies it to the real fsm at the next index, as every node
// would. err, when set, is returned instead; before runs ahead of each
// command (outside the lock) to inject a racing write.
type testApplier struct {
	f      *fsm.FSM
	mu     sync.Mutex
	index  uint64
	leader atomic.Bool
	err    atomic.Pointer[error]
	before atomic.Pointer[func(*fsmpb.Command)]
	logged [][]byte // every encoded entry, for the key-material scan
}

func (a *testApplier) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if p := a.err.Load(); p != nil {
		return nil, *p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p := a.before.Load(); p != nil {
		(*p)(cmd)
	}
	b, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index++
	a.logged = append(a.logged, b)
	res := a.f.Apply(a.index, b)
	if res == nil {
		return nil, errors.New("fsm returned no Result")
	}
	return res, nil
}

func (a *testApplier) IsLeader() bool { return a.leader.Load() }

func (a *testApplier) setErr(err error) {
	if err == nil {
		a.err.Store(nil)
		return
	}
	a.err.Store(&err)
}

// testClock is an injectable clock that only moves when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     testing.TB
	fsm   *fsm.FSM
	hsm   *soft.HSM
	ap    *testApplier
	clock *testClock
	s     *Store
	level ProtectionLevel // of the keys create makes ("" = SOFTWARE)
}

// testLogger routes logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newHarness builds a Store over a real fsm and a real soft HSM (sealed
// file in t.TempDir(), minimal KDF cost). The scheduler loop is off unless
// cfg sets an interval.
func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	ctx := context.Background()
	h, err := soft.Create(ctx, soft.Config{
		Path:       filepath.Join(t.TempDir(), "domain.sealed"),
		Passphrase: []byte("keystore test passphrase"),
		KDF:        soft.KDFParams{Time: soft.MinKDFTime, MemoryKiB: soft.MinKDFMemoryKiB, Threads: 1},
	})
	if err != nil {
		t.Fatalf("soft.Create: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	f := fsm.New(nil)
	ap := &testApplier{f: f}
	ap.leader.Store(true)
	clock := &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if cfg.SchedulerInterval == 0 {
		cfg.SchedulerInterval = -1
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Logger == nil {
		if _, ok := t.(*testing.B); !ok {
			cfg.Logger = testLogger(t)
		}
	}
	s, err := New(cfg, f, h, ap)
	if err != nil {
		t.Fatalf("keystore.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &harness{t: t, fsm: f, hsm: h, ap: ap, clock: clock, s: s}
}

// newLevelHarness is newHarness whose create makes keys of level.
func newLevelHarness(t testing.TB, cfg Config, level ProtectionLevel) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.level = level
	return h
}

// bothLevels runs one operation suite for each protection level, with the
// soft backend's key operations standing in for an HSM: behaviour, errors
// and formats must match.
func bothLevels(t *testing.T, test func(t *testing.T, level ProtectionLevel)) {
	for _, level := range []ProtectionLevel{ProtectionSoftware, ProtectionHSM} {
		t.Run(string(level), func(t *testing.T) { test(t, level) })
	}
}

var bg = context.Background()

// create makes a key of h.level or fails the test.
func (h *harness) create(spec KeySpec, usage KeyUsage) KeyMetadata {
	h.t.Helper()
	m, _, err := h.s.CreateKey(bg, CreateKeyInput{KeySpec: spec, KeyUsage: usage, ProtectionLevel: h.level})
	if err != nil {
		h.t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
	}
	return m
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks err against a sentinel and, if non-empty, a message part.
func wantErr(t testing.TB, err, kind error, msgPart string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	if msgPart != "" && !strings.Contains(err.Error(), msgPart) {
		t.Fatalf("error %q does not mention %q", err.Error(), msgPart)
	}
}
