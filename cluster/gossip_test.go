package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/internal/wait"
)

func gossipNode(t *testing.T, id string, key []byte) *cluster.Node {
	t.Helper()
	cfg := clustertest.RegionalConfig(clustertest.FastConfig(cluster.DefaultConfig()), key)
	cfg.NodeID, cfg.DataDir, cfg.APIAddr, cfg.ClusterAddr, cfg.Bootstrap = id, t.TempDir(), "127.0.0.1:1", "127.0.0.1:4", true
	cfg.Logger = clustertest.TestLogger(t)
	n, err := cluster.New(context.Background(), cfg, fsm.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestGossipKey(t *testing.T) {
	for name, g := range map[string]cluster.GossipConfig{
		"no key":    {BindAddr: "127.0.0.1:0"},
		"short key": {BindAddr: "127.0.0.1:0", Key: make([]byte, 16)},
		"bad addr":  {BindAddr: "nowhere", Insecure: true},
	} {
		cfg := cluster.DefaultConfig()
		cfg.NodeID, cfg.DataDir, cfg.APIAddr, cfg.ClusterAddr, cfg.Gossip = "n", "d", "a:1", "a:4", g
		if err := cfg.Validate(); !errors.Is(err, cluster.ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, b, c := gossipNode(t, "a", k1), gossipNode(t, "b", k2), gossipNode(t, "c", k1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := b.JoinGossip(ctx, []string{a.GossipAddr()}); err == nil {
		t.Error("a node with another gossip key joined")
	}
	if err := c.JoinGossip(ctxFor(t, 5*time.Second), []string{a.GossipAddr()}); err != nil {
		t.Fatalf("same key: %v", err)
	}
	_ = wait.For(clustertest.WaitTimeout, 0, func() bool {
		ms, _ := a.Members(ctxFor(t, time.Second))
		return len(ms) == 2
	})
	ms, err := a.Members(ctxFor(t, time.Second))
	if err != nil || len(ms) != 2 || ms[0].ID != "a" || ms[1].ID != "c" || ms[1].Status != cluster.StatusAlive {
		t.Errorf("a's members = %+v, %v; want a and c alive, not b", ms, err)
	}
}

func TestWANTimings(t *testing.T) {
	for _, rtt := range []time.Duration{10 * time.Millisecond, 150 * time.Millisecond} {
		w := cluster.WANTimings(rtt)
		if w.HeartbeatTimeout < 5*rtt || w.HeartbeatTimeout < cluster.DefaultConfig().HeartbeatTimeout || w.LeaderLeaseTimeout > w.HeartbeatTimeout {
			t.Errorf("WANTimings(%v) = %+v", rtt, w)
		}
		cfg := cluster.DefaultConfig()
		cfg.NodeID, cfg.DataDir, cfg.APIAddr, cfg.ClusterAddr = "n", "d", "a:1", "a:4"
		w.Apply(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("WANTimings(%v) do not validate: %v", rtt, err)
		}
	}
	if w := cluster.WANTimings(150 * time.Millisecond); w.HeartbeatTimeout != 750*time.Millisecond {
		t.Errorf("heartbeat at 150ms rtt = %v, want 750ms (5 x rtt)", w.HeartbeatTimeout)
	}
	if w := cluster.WANTimings(10 * time.Millisecond); w.HeartbeatTimeout != 400*time.Millisecond {
		t.Errorf("heartbeat at 10ms rtt = %v, want the 400ms floor", w.HeartbeatTimeout)
	}
}
