package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/internal/testwait"
)

// testPassphrase opens the soft HSM files of test clusters.
var testPassphrase = []byte("test-passphrase-not-secret")

// logSink collects every node's log lines so tests can scan them.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// testCluster is N in-process nodes over real TCP on 127.0.0.1, each with
// its own bolt files and soft HSM file (a copy of the first's).
type testCluster struct {
	t     testing.TB
	dir   string
	nodes []*Node
	cfgs  []Config
	logs  *logSink
}

func fastConfig(t testing.TB, dir string, i int, logs *logSink) Config {
	cfg := DefaultConfig()
	cfg.NodeID = fmt.Sprintf("node-%d", i+1)
	cfg.Region = []string{"us-east", "eu-west", "ap-south"}[i%3]
	cfg.DataDir = filepath.Join(dir, cfg.NodeID)
	// Port 0 everywhere: testCluster.start pins the addresses the node
	// bound, and a restarted node listens on them again.
	cfg.APIAddr, cfg.RaftAddr, cfg.ClusterAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.HSM.Passphrase = testPassphrase
	cfg.HSM.SoftPath = filepath.Join(dir, "domain.sealed") // one sealed file, as if copied
	cfg.HSM.FastKDF = true
	cfg.HSM.CreateIfMissing = i == 0
	// Raft keeps the production LAN timings (cluster.DefaultConfig): with
	// 100 ms elections, six in-process nodes under -race on two loaded
	// cores fell into elections that never finished (votes came back after
	// the candidate's timeout), and tests should run what users run. The
	// lease alone is stretched to the heartbeat timeout (raft's limit): at
	// 200 ms loaded in-process leaders stepped down every few seconds.
	// node.DefaultConfig leaves the Raft timings zero (the cluster fills
	// them in), so the heartbeat timeout is read from the cluster's.
	cfg.LeaderLeaseTimeout = cluster.DefaultConfig().HeartbeatTimeout
	cfg.SchedulerInterval = -1
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

func startCluster(t testing.TB, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), logs: &logSink{}}
	for i := 0; i < n; i++ {
		cfg := fastConfig(t, c.dir, i, c.logs)
		cfg.Bootstrap = i == 0
		if i > 0 {
			cfg.Join = []string{c.nodes[0].ClusterAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
		c.start(i)
		if i == 0 {
			c.waitLeader()
		}
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The node gets its cluster-plane listener rather than a port reserved
	// and released; a restarted node listens on its first addresses again.
	n, err := StartLocal(ctx, c.cfgs[i], nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = n
	n.PinAddrs(&c.cfgs[i])
}

func (c *testCluster) stop(i int) {
	c.t.Helper()
	if err := c.nodes[i].Close(); err != nil {
		c.t.Errorf("close %s: %v", c.cfgs[i].NodeID, err)
	}
	c.nodes[i] = nil
}

func (c *testCluster) closeAll() {
	for i := len(c.nodes) - 1; i >= 0; i-- {
		if c.nodes[i] != nil {
			c.stop(i)
		}
	}
}

// waitLeader polls until some running node leads and returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	testwait.Eventually(c.t, 20*time.Second, "a leader", func() bool {
		for i, n := range c.nodes {
			if n != nil && n.Cluster().IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// waitApplied polls until every running node applied index.
func (c *testCluster) waitApplied(index uint64) {
	c.t.Helper()
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := n.FSM().WaitApplied(ctx, index)
		cancel()
		if err != nil {
			c.t.Fatalf("%s did not apply index %d: %v", n.ID(), index, err)
		}
	}
}

func (c *testCluster) client(i int) *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig(c.nodes[i].APIAddr())
	cfg.Insecure = true
	cfg.DisableDiscovery = true // "through node i" must mean node i
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreateKey(t testing.TB, cl *client.Client, req *apiv1.CreateKeyRequest) *apiv1.CreateKeyResponse {
	t.Helper()
	res, err := cl.CreateKey(ctxT(t), req)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return res
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }
