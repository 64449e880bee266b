package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// adapterKey makes an ENABLED key with one version, as the keystore
// proposes one.
func adapterKey(id string) *fsmpb.Key {
	return &fsmpb.Key{
		Id: id, Spec: fsmpb.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT, Usage: fsmpb.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT,
		State: fsmpb.KeyState_KEY_STATE_ENABLED, Origin: fsmpb.Origin_ORIGIN_MERIDIAN,
		ProtectionLevel: fsmpb.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE,
		Versions:        []*fsmpb.KeyVersion{{Version: 1, WrappedMaterial: bytes.Repeat([]byte{1}, 40), DomainKeyVersion: 1}},
	}
}

// encodeAdapterCommand encodes a log entry for the adapter tests.
func encodeAdapterCommand(t testing.TB, ct fsmpb.CommandType, p proto.Message) []byte {
	t.Helper()
	c, err := fsm.NewCommand(ct, p, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsm.EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnderRaft runs the fsm under a real hashicorp/raft node through
// raftFSM: results come back through ApplyFuture.Response, and a restarted
// node rebuilds the state from its snapshot plus the log after it, with
// the right applied index. (It lived in fsm while the FSM was raft's state
// machine itself.)
func TestUnderRaft(t *testing.T) {
	logs, stable := raft.NewInmemStore(), raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, &testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout, conf.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	conf.LeaderLeaseTimeout, conf.CommitTimeout = 50*time.Millisecond, 5*time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // snapshots only when asked
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &testWriter{t}, Level: hclog.Warn})

	start := func(f *raftFSM) (*raft.Raft, *raft.InmemTransport) {
		addr, trans := raft.NewInmemTransport("")
		r, err := raft.NewRaft(conf, f, logs, stable, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}).Error(); err != nil && err != raft.ErrCantBootstrap {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for r.State() != raft.Leader {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			select {
			case <-r.LeaderCh():
			case <-time.After(10 * time.Millisecond):
			}
		}
		return r, trans
	}
	propose := func(r *raft.Raft, ct fsmpb.CommandType, p proto.Message) (*fsmpb.Result, uint64) {
		fut := r.Apply(encodeAdapterCommand(t, ct, p), 5*time.Second)
		if err := fut.Error(); err != nil {
			t.Fatal(err)
		}
		return fut.Response().(*fsmpb.Result), fut.Index()
	}
	logger := slog.New(slog.NewTextHandler(&testWriter{t}, nil))

	f1 := fsm.New(logger)
	r1, tr1 := start(&raftFSM{fsm: f1})
	for i := range 20 {
		res, idx := propose(r1, fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, &fsmpb.CreateKey{Key: adapterKey(fmt.Sprint("k-", i))})
		if res.GetErrorCode() != "" || res.GetIndex() != idx || f1.AppliedIndex() != idx {
			t.Fatalf("result %v index %d applied %d", res, idx, f1.AppliedIndex())
		}
	}
	if err := r1.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	_, last := propose(r1, fsmpb.CommandType_COMMAND_TYPE_DISABLE_KEY, &fsmpb.KeyRef{KeyId: "k-3"})
	if err := r1.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	tr1.Close()

	f2 := fsm.New(logger)
	a2 := &raftFSM{fsm: f2}
	r2, tr2 := start(a2)
	defer func() { _ = r2.Shutdown().Error(); tr2.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f2.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if f2.KeyCount() != 20 {
		t.Fatalf("keys after restart: %d", f2.KeyCount())
	}
	if k, _ := f2.Key("k-3"); k.GetState() != fsmpb.KeyState_KEY_STATE_DISABLED {
		t.Fatalf("entry after the snapshot not replayed: %v", k)
	}
	if n := a2.restores.Load(); n != 1 {
		t.Fatalf("%d restores counted, want 1 (from the snapshot)", n)
	}
}

// adapterState is an fsm with a few keys, applied through the adapter.
func adapterState(t *testing.T, keys int) *raftFSM {
	t.Helper()
	r := &raftFSM{fsm: fsm.New(nil)}
	for i := range keys {
		b := encodeAdapterCommand(t, fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, &fsmpb.CreateKey{Key: adapterKey(fmt.Sprint("k-", i))})
		if res, ok := r.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}).(*fsmpb.Result); !ok || res.GetErrorCode() != "" {
			t.Fatalf("apply: %v", res)
		}
	}
	return r
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

// A persisted snapshot is the fsm's own encoding, and the sink is closed.
func TestRaftSnapshotClosesSink(t *testing.T) {
	r := adapterState(t, 20)
	snap, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("persist left sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	var want bytes.Buffer
	if err := r.fsm.Snapshot().Persist(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want.Bytes()) {
		t.Fatal("the sink holds other bytes than the fsm's snapshot encoding")
	}
}

// A failing sink: Persist cancels it and reports the error.
type failSink struct {
	memSink
	after int
}

func (s *failSink) Write(p []byte) (int, error) {
	if s.Len()+len(p) > s.after {
		return 0, errors.New("disk full")
	}
	return s.memSink.Write(p)
}

func TestPersistCancelsOnWriteError(t *testing.T) {
	snap, err := adapterState(t, 200).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &failSink{after: 100}
	if err := snap.Persist(sink); err == nil || !sink.cancelled || sink.closed {
		t.Fatalf("err %v cancelled %v closed %v", err, sink.cancelled, sink.closed)
	}
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
