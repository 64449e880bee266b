// Package nodetest is node/localcluster for tests: T fails the test where
// the cluster returns an error and adds the clients, waits, PKCS#11 tokens
// and workloads that node's tests share. Every multi-node node test starts
// its cluster here.
package nodetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
)

// WaitTimeout bounds every convergence poll of T: generous, because tests
// share two cores with other packages' tests and run with -race.
const WaitTimeout = 60 * time.Second

// T is a localcluster.Cluster for one test: it fails the test where the
// Cluster returns an error, keeps every node's log lines (Logs) and writes
// them to a file when the test fails, and closes the cluster in the test's
// cleanup.
type T struct {
	*localcluster.Cluster
	t    testing.TB
	Logs *LogSink
	// Dir is the test's temp dir holding every node's data dir.
	Dir string

	tlsOnce sync.Once
	tlsCfg  *tls.Config // the clients' TLS of a TLS cluster (ClientTLS("nodetest"))
}

// Start starts a cluster of opts (Dir and Logger are the harness's) for t.
// Regional clusters are returned once every node is a member and knows
// the leader; placement converges afterwards (WaitSpread).
func Start(t testing.TB, opts localcluster.Options) *T {
	t.Helper()
	c := &T{t: t, Logs: &LogSink{}, Dir: t.TempDir()}
	opts.Dir = c.Dir
	// Debug lines for small clusters (tests scan them, for secrets too);
	// Raft's own debug lines would dominate CPU and memory with six
	// gossiping nodes.
	level := slog.LevelDebug
	if opts.Regional {
		level = slog.LevelInfo
	}
	opts.Logger = slog.New(slog.NewTextHandler(c.Logs, &slog.HandlerOptions{Level: level}))
	nodes := opts.Nodes
	opts.Nodes = 0
	cl, err := localcluster.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Cluster = cl
	t.Cleanup(c.dumpLogsOnFailure)
	t.Cleanup(c.CloseAll)
	for range nodes {
		c.Add("", nil)
	}
	if opts.Regional {
		c.WaitMembers()
	}
	return c
}

// SetT makes c fail t from now on (a subtest of a shared cluster) and
// returns the function that restores the test it had.
func (c *T) SetT(t testing.TB) (restore func()) {
	prev := c.t
	c.t = t
	return func() { c.t = prev }
}

// Add starts one more node (see localcluster.Cluster.AddNode) and returns
// its index.
func (c *T) Add(region string, setup func(i int, cfg *node.Config)) int {
	c.t.Helper()
	i, err := c.AddNode(ctxFor(c.t, 2*WaitTimeout), region, setup)
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// Start (re)starts node i, joining through the live nodes.
func (c *T) Start(i int) {
	c.t.Helper()
	if err := c.StartNode(ctxFor(c.t, 2*WaitTimeout), i); err != nil {
		c.t.Fatal(err)
	}
}

// Resume restarts node i from its Raft state alone (no join).
func (c *T) Resume(i int) {
	c.t.Helper()
	if err := c.ResumeNode(ctxFor(c.t, 2*WaitTimeout), i); err != nil {
		c.t.Fatal(err)
	}
}

// Stop closes node i; a close that fails is a test error.
func (c *T) Stop(i int) {
	c.t.Helper()
	if err := c.StopNode(i); err != nil {
		c.t.Error(err)
	}
}

// Forget drops the last node, stopped, from the harness.
func (c *T) Forget(i int) {
	c.t.Helper()
	if err := c.Cluster.Forget(i); err != nil {
		c.t.Fatal(err)
	}
}

// CloseAll stops every node (the test's cleanup does it too).
func (c *T) CloseAll() {
	if err := c.Close(); err != nil {
		c.t.Error(err)
	}
}

// WaitLeader waits until some running node leads and returns its index.
func (c *T) WaitLeader() int {
	c.t.Helper()
	i, err := c.AwaitLeader(ctxFor(c.t, WaitTimeout))
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// WaitMembers waits until every running node is in the leader's Raft
// configuration and knows the leader.
func (c *T) WaitMembers() {
	c.t.Helper()
	testwait.Eventually(c.t, WaitTimeout, "every node in raft and seeing the leader", func() bool {
		return c.Members(context.Background())
	})
}

// WaitApplied waits until every running node applied index.
func (c *T) WaitApplied(index uint64) {
	c.t.Helper()
	for _, n := range c.Live() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		err := n.FSM().WaitApplied(ctx, index)
		cancel()
		if err != nil {
			c.t.Fatalf("%s did not apply index %d: %v", n.ID(), index, err)
		}
	}
}

// Voters is the leader's voter ids by region (nil without a leader).
func (c *T) Voters() map[string][]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Cluster.Voters(ctx)
}

// Spread is the voter count per region, sorted: "[1 2 2]" for 2-2-1.
func Spread(v map[string][]string) string {
	var counts []int
	for _, r := range localcluster.Regions {
		counts = append(counts, len(v[r]))
	}
	slices.Sort(counts)
	return fmt.Sprint(counts)
}

// WaitSpread waits for five voters placed 2-2-1 over the three regions.
func (c *T) WaitSpread() map[string][]string {
	c.t.Helper()
	var got map[string][]string
	testwait.Eventually(c.t, WaitTimeout, "voters spread 2-2-1", func() error {
		if got = c.Voters(); Spread(got) != "[1 2 2]" {
			return fmt.Errorf("voters by region = %v", got)
		}
		return nil
	})
	return got
}

// Index is the index of the node with id; an unknown id fails the test.
func (c *T) Index(id string) int {
	c.t.Helper()
	i := c.Cluster.Index(id)
	if i < 0 {
		c.t.Fatalf("no node %s", id)
	}
	return i
}

// ClientTLS is a TLS configuration for a client named name, with a client
// certificate of the cluster's CA (nil when the cluster is not TLS).
func (c *T) ClientTLS(name string) *tls.Config {
	c.t.Helper()
	cfg, err := c.Cluster.ClientTLS(name)
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// security sets how cfg's clients dial: with a client certificate
// ("nodetest") on a TLS cluster, plaintext otherwise.
func (c *T) security(cfg *client.Config) {
	c.tlsOnce.Do(func() { c.tlsCfg = c.ClientTLS("nodetest") })
	cfg.TLS, cfg.Insecure = c.tlsCfg, c.tlsCfg == nil
}

// Client talks to node i only ("through node i" must mean node i).
func (c *T) Client(i int) *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig(c.APIAddr(i))
	c.security(&cfg)
	cfg.DisableDiscovery = true
	return c.newClient(cfg)
}

// PinnedClient talks to node i only, one attempt: what a caller inside a
// partition, or a probe of one replica, sees.
func (c *T) PinnedClient(i int) *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig(c.APIAddr(i))
	c.security(&cfg)
	cfg.DisableDiscovery, cfg.MaxAttempts = true, 1
	return c.newClient(cfg)
}

// RegionClient is a nearest-node client of region, seeded with every live
// node: it discovers the cluster, prefers region's nodes and fails over.
// DownFor and the refresh are shortened so a test's few seconds see what
// production's minutes would.
func (c *T) RegionClient(region string, tweak func(*client.Config)) *client.Client {
	c.t.Helper()
	var seeds []string
	for i := range c.Len() {
		if c.Node(i) != nil {
			seeds = append(seeds, c.APIAddr(i))
		}
	}
	cfg := client.DefaultConfig(seeds...)
	c.security(&cfg)
	cfg.Region = region
	cfg.RefreshInterval, cfg.DownFor = time.Second, time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	return c.newClient(cfg)
}

func (c *T) newClient(cfg client.Config) *client.Client {
	c.t.Helper()
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// RawAPI is a bare gRPC stub for addr: no retries, no routing, so a
// measurement sees exactly one node's answer.
func RawAPI(t testing.TB, addr string) apiv1.KeyManagementClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1.NewKeyManagementClient(conn)
}

// dumpLogsOnFailure keeps the nodes' logs of a failed test in a file (the
// data dir is removed) and says where.
func (c *T) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name())
	path := filepath.Join(os.TempDir(), fmt.Sprintf("meridian-%s-%d.log", name, time.Now().UnixNano()))
	if err := os.WriteFile(path, c.Logs.Bytes(), 0o600); err == nil {
		c.t.Logf("node logs: %s", path)
	}
}

// LogSink collects every node's log lines so tests can scan them.
type LogSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// Bytes is a copy of everything logged so far.
func (s *LogSink) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// ctxFor is a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
