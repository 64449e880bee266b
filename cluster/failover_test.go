package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/internal/testwait"
)

func TestLeaderKilledWritesResumeAndNothingAcknowledgedIsLost(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	oldLeader := c.Leader()

	var (
		mu    sync.Mutex
		acked []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Writers go through every node, so both local proposals and forwarding
	// see the leader die under them.
	for w, nd := range c.Live() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k-w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				res, err := nd.Apply(ctx, createKey(t, id))
				cancel()
				if errors.Is(err, cluster.ErrShutdown) {
					return // this writer's node was killed
				}
				if err == nil && res.GetErrorCode() == "" {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testwait.Eventually(t, clustertest.WaitTimeout, "writes before the kill", func() bool { return count() >= 20 })
	oldLeader.Kill()
	newLeader := c.WaitForNewLeader(oldLeader)
	atKill := count()
	testwait.Eventually(t, clustertest.WaitTimeout, "writes after the new leader", func() bool { return count() >= atKill+20 })
	close(stop)
	wg.Wait()

	oldLeader.Restart()
	idx := mustCreate(t, newLeader, "k-final")
	c.WaitApplied(idx)
	mu.Lock()
	ids := append([]string{"k-final"}, acked...)
	mu.Unlock()
	assertKeys(t, c, ids)
	// Every node applied the same prefix of the log, so holds the same
	// state, acknowledged or not.
	want := newLeader.FSM.KeyCount()
	for _, nd := range c.Live() {
		if got := nd.FSM.KeyCount(); got != want {
			t.Errorf("%s holds %d keys, leader %d", nd.ID, got, want)
		}
	}
	t.Logf("%d acknowledged writes, leader %s -> %s", len(ids), oldLeader.ID, newLeader.ID)
}

func TestRetryWithSameRequestIDAppliesOnceAcrossLeaderChange(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	oldLeader := c.Leader()
	cmd := createKey(t, "k-once")
	first, err := oldLeader.Apply(ctxFor(t, 5*time.Second), cmd)
	if err != nil || first.GetErrorCode() != "" {
		t.Fatalf("first apply: %v %v", first, err)
	}
	c.WaitApplied(first.GetIndex())
	oldLeader.Kill()
	newLeader := c.WaitForNewLeader(oldLeader)

	// The client never saw the answer and retries the same request through
	// a follower of the new leader: it must get the first answer back, not
	// AlreadyExists from a second application.
	again, err := follower(c, newLeader).Apply(ctxFor(t, 5*time.Second), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetErrorCode() != "" || again.GetIndex() != first.GetIndex() {
		t.Fatalf("retry got %v, want the first result at index %d", again, first.GetIndex())
	}
	if got := newLeader.FSM.KeyCount(); got != 1 {
		t.Errorf("key count %d, want 1", got)
	}
}

func TestApplyWithoutQuorumFailsWithinDeadline(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	c.Leader()
	// Kill the leader and one follower; the survivor can never get a quorum.
	survivor := c.Nodes[2]
	for _, nd := range c.Nodes[:2] {
		nd.Kill()
	}
	const deadline = 1500 * time.Millisecond
	start := time.Now()
	_, err := survivor.Apply(ctxFor(t, deadline), createKey(t, "k-minority"))
	elapsed := time.Since(start)
	// ErrNoLeader at the deadline, or sooner once no leader has been seen
	// for a few election timeouts (Apply's noLeaderWait).
	if !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("apply without quorum: %v, want ErrNoLeader", err)
	}
	if elapsed > deadline+time.Second {
		t.Errorf("apply took %v with a %v deadline", elapsed, deadline)
	}
	if _, ok := survivor.FSM.Key("k-minority"); ok {
		t.Error("write without quorum was applied")
	}
	// No deadline of its own: bounded by ApplyTimeout, still an answer.
	if err := survivor.WaitForLeader(ctxFor(t, 300*time.Millisecond)); !errors.Is(err, cluster.ErrNoLeader) {
		t.Errorf("WaitForLeader without quorum: %v", err)
	}
}

func TestClosedNode(t *testing.T) {
	c := clustertest.StartCluster(t, 1)
	nd := c.Leader()
	nd.Kill()
	if err := nd.Node.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := nd.Apply(ctxFor(t, time.Second), createKey(t, "k-closed")); !errors.Is(err, cluster.ErrShutdown) {
		t.Errorf("apply after close: %v, want ErrShutdown", err)
	}
	if err := nd.Snapshot(ctxFor(t, time.Second)); !errors.Is(err, cluster.ErrShutdown) {
		t.Errorf("snapshot after close: %v, want ErrShutdown", err)
	}
}

func TestApplyRefusesCommandsThatWouldStopTheCluster(t *testing.T) {
	c := clustertest.StartCluster(t, 1)
	nd := c.Leader()
	unknown := createKey(t, "k-unknown")
	unknown.Type = fsmpb.CommandType(999)
	newer := createKey(t, "k-newer")
	newer.Version = fsm.CommandVersion + 1
	unversioned := createKey(t, "k-unversioned")
	unversioned.Version = 0
	badPayload := createKey(t, "k-bad")
	badPayload.Payload = []byte{0x0a, 0x05, 0x01}
	for name, cmd := range map[string]*fsmpb.Command{
		"nil": nil, "unknown type": unknown, "newer version": newer,
		"version 0": unversioned, "bad payload": badPayload,
	} {
		_, err := nd.Apply(ctxFor(t, time.Second), cmd)
		if !errors.Is(err, cluster.ErrInvalidCommand) || !errors.Is(err, fsm.ErrBadCommand) {
			t.Errorf("%s: %v, want ErrInvalidCommand and fsm.ErrBadCommand", name, err)
		}
	}
	if got := nd.FSM.KeyCount(); got != 0 {
		t.Fatalf("refused commands left %d keys", got)
	}
	// Flagged as skippable, an unknown command is harmless and goes through.
	unknown.IgnoreIfUnknown = true
	if _, err := nd.Apply(ctxFor(t, 5*time.Second), unknown); err != nil {
		t.Errorf("flagged unknown command: %v", err)
	}
}

func TestRemoveServer(t *testing.T) {
	c := clustertest.StartCluster(t, 3)
	leader := c.Leader()
	f := follower(c, leader)
	if err := f.RemoveServer(ctxFor(t, time.Second), leader.ID); !errors.Is(err, cluster.ErrNotLeader) {
		t.Errorf("remove on a follower: %v, want ErrNotLeader", err)
	}
	f.Kill()
	if err := leader.RemoveServer(ctxFor(t, 5*time.Second), f.ID); err != nil {
		t.Fatal(err)
	}
	servers, err := leader.Servers(ctxFor(t, time.Second))
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers after remove = %v, %v", servers, err)
	}
	if _, ok := leader.FSM.Node(f.ID); ok {
		t.Error("removed node is still registered")
	}
	mustCreate(t, leader, "k-two-nodes")
}
