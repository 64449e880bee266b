package fsm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// TestUnderRaft runs the FSM under a real hashicorp/raft node: results come
// back through ApplyFuture.Response, and a restarted node rebuilds the state
// from its snapshot plus the log after it, with the right applied index.
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

	start := func(f *FSM) (*raft.Raft, *raft.InmemTransport) {
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
		c, err := NewCommand(ct, p, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := EncodeCommand(c)
		fut := r.Apply(b, 5*time.Second)
		if err := fut.Error(); err != nil {
			t.Fatal(err)
		}
		return fut.Response().(*fsmpb.Result), fut.Index()
	}

	f1 := New(testLogger(t))
	r1, tr1 := start(f1)
	for i := range 20 {
		res, idx := propose(r1, tCreate, &fsmpb.CreateKey{Key: newKey(fmt.Sprint("k-", i), specSymmetric, usageEncrypt, 1)})
		if res.GetErrorCode() != "" || res.GetIndex() != idx || f1.AppliedIndex() != idx {
			t.Fatalf("result %v index %d applied %d", res, idx, f1.AppliedIndex())
		}
	}
	if err := r1.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	_, last := propose(r1, tDisable, &fsmpb.KeyRef{KeyId: "k-3"})
	if err := r1.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	tr1.Close()

	f2 := New(testLogger(t))
	r2, tr2 := start(f2)
	defer func() { _ = r2.Shutdown().Error(); tr2.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f2.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if f2.KeyCount() != 20 {
		t.Fatalf("keys after restart: %d", f2.KeyCount())
	}
	if k, _ := f2.Key("k-3"); k.GetState() != disabled {
		t.Fatalf("entry after the snapshot not replayed: %v", k)
	}
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
