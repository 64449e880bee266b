package proc_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/proc"
)

// The meridian binary is built once per test process, on first use.
var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func meridianBinary(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		if bin.dir, bin.err = os.MkdirTemp("", "meridian-bin-"); bin.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		bin.path, bin.err = proc.BuildBinary(ctx, "../..", bin.dir)
		t.Logf("built meridian in %v", time.Since(start).Round(time.Millisecond))
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// startCluster starts a multi-process cluster. Missing root, ip or
// iptables fails the test (never skips): CI runs it, and scripts/deps.sh
// installs the tools.
func startCluster(t *testing.T, regions []string, perRegion int) *proc.Harness {
	t.Helper()
	return startClusterConfig(t, proc.Config{Regions: regions, NodesPerRegion: perRegion})
}

// startClusterConfig is startCluster with more of the harness's Config.
func startClusterConfig(t *testing.T, cfg proc.Config) *proc.Harness {
	t.Helper()
	if err := proc.CheckRequirements(); err != nil {
		t.Fatalf("the multi-process chaos harness cannot run here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg.Binary, cfg.Logf = meridianBinary(t), t.Logf
	h, err := proc.New(ctx, cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			nodes, _ := h.Nodes(context.Background())
			for _, n := range nodes {
				t.Logf("--- log tail of %s (alive %v):\n%s", n.ID, n.Alive, h.LogTail(n.ID, 25))
			}
		}
		if err := h.Close(); err != nil {
			t.Errorf("close harness: %v", err)
		}
	})
	return h
}
