package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
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
	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/internal/wait"
)

// regions are the three regions of every multi-region test, in the order
// fastConfig assigns them (node-1 us-east, node-2 eu-west, node-3 ap-south,
// node-4 us-east, ...).
var regions = []string{"us-east", "eu-west", "ap-south"}

// waitTimeout bounds every convergence poll: generous, because the tests
// share two cores with other packages' tests and run with -race.
const waitTimeout = 60 * time.Second

// regionCluster is a testCluster whose nodes gossip (LAN timings, an
// encrypted pool), run autopilot with short test timings and send their
// node-to-node traffic (Raft, forwarding) through one netsim.Sim, so tests
// can add latency and cut regions apart. Test clients are outside the Sim:
// a partition cuts nodes from nodes, never a test from a node.
type regionCluster struct {
	*testCluster
	sim       *netsim.Sim
	gossipKey []byte
	tweak     func(*Config)
}

// startRegions starts perRegion nodes in each of the three regions; the
// first bootstraps and the others join through every node started before
// them. It returns once every node is in Raft and knows the leader;
// placement converges afterwards (waitSpread).
func startRegions(t testing.TB, perRegion int, tweak func(*Config)) *regionCluster {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c := &regionCluster{testCluster: &testCluster{t: t, dir: t.TempDir(), logs: &logSink{}},
		sim: netsim.New(), gossipKey: key, tweak: tweak}
	t.Cleanup(c.dumpLogsOnFailure)
	t.Cleanup(c.closeAll)
	for range 3 * perRegion {
		c.addNode("")
	}
	c.waitMembers()
	return c
}

// addNode starts one more node (in region, or the next region in turn when
// region is "") that joins through the live nodes, and returns its index.
func (c *regionCluster) addNode(region string) int {
	c.t.Helper()
	i := len(c.nodes)
	cfg := fastConfig(c.t, c.dir, i, c.logs)
	if region != "" {
		cfg.Region = region
	}
	cfg.Zone = fmt.Sprintf("%s%c", cfg.Region, 'a'+i/3%3)
	// Raft's own debug lines would dominate CPU and memory with six nodes.
	cfg.Logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo})) // Start names the node
	cfg.GossipAddr, cfg.GossipKey, cfg.GossipLAN = "127.0.0.1:0", c.gossipKey, true
	cfg.TargetVoters = 5
	cfg.StabilizationTime = 300 * time.Millisecond
	cfg.DeadServerGrace = 1500 * time.Millisecond
	cfg.Sim = c.sim
	cfg.Bootstrap = i == 0
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	c.cfgs = append(c.cfgs, cfg)
	c.nodes = append(c.nodes, nil)
	c.restart(i)
	if i == 0 {
		c.waitLeader()
	}
	return i
}

// restart (re)starts node i, joining through the live nodes' cluster and
// gossip addresses as an operator's --join flags would name them.
func (c *regionCluster) restart(i int) {
	c.t.Helper()
	cfg := &c.cfgs[i]
	cfg.Join, cfg.GossipSeeds = nil, nil
	for j, n := range c.nodes {
		if n != nil && j != i {
			cfg.Join = append(cfg.Join, n.ClusterAddr())
			cfg.GossipSeeds = append(cfg.GossipSeeds, c.cfgs[j].GossipAddr)
		}
	}
	if cfg.Bootstrap {
		cfg.Join = nil // it resumes its own state; gossip seeds bring it back
	}
	c.start(i)
}

// waitMembers waits until every live node is in the leader's Raft
// configuration and knows the leader.
func (c *regionCluster) waitMembers() {
	c.t.Helper()
	testwait.Eventually(c.t, waitTimeout, "every node in raft and seeing the leader", func() bool {
		l := c.leaderNode()
		if l == nil {
			return false
		}
		servers, err := l.Cluster().Servers(context.Background())
		if err != nil || len(servers) != len(c.live()) {
			return false
		}
		for _, n := range c.live() {
			if id, addr := n.Cluster().Leader(); id == "" || addr == "" {
				return false
			}
		}
		return true
	})
}

func (c *regionCluster) live() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// leaderNode is the live node that leads right now, or nil.
func (c *regionCluster) leaderNode() *Node {
	for _, n := range c.nodes {
		if n != nil && n.Cluster().IsLeader() {
			return n
		}
	}
	return nil
}

// index returns the index of the node with id.
func (c *regionCluster) index(id string) int {
	for i, cfg := range c.cfgs {
		if cfg.NodeID == id {
			return i
		}
	}
	c.t.Fatalf("no node %s", id)
	return -1
}

// inRegion returns the indexes of the live nodes of region.
func (c *regionCluster) inRegion(region string) []int {
	var out []int
	for i, n := range c.nodes {
		if n != nil && c.cfgs[i].Region == region {
			out = append(out, i)
		}
	}
	return out
}

// voters returns the leader's voter ids by region (nil without a leader).
func (c *regionCluster) voters() map[string][]string {
	l := c.leaderNode()
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ms, err := l.Cluster().Members(ctx)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, m := range ms {
		if m.Role == cluster.RoleVoter {
			out[m.Region] = append(out[m.Region], m.ID)
		}
	}
	return out
}

// spread is the voter count per region, sorted: "[1 2 2]" for 2-2-1.
func spread(v map[string][]string) string {
	var counts []int
	for _, r := range regions {
		counts = append(counts, len(v[r]))
	}
	slices.Sort(counts)
	return fmt.Sprint(counts)
}

// waitSpread waits for five voters placed 2-2-1 over the three regions.
func (c *regionCluster) waitSpread() map[string][]string {
	c.t.Helper()
	var got map[string][]string
	if wait.For(waitTimeout, 0, func() bool { got = c.voters(); return spread(got) == "[1 2 2]" }) != nil {
		c.t.Fatalf("voters by region = %v, want 2-2-1", got)
	}
	return got
}

// waitAppliedLive waits until every live node applied index.
func (c *regionCluster) waitAppliedLive(index uint64) {
	c.t.Helper()
	for _, n := range c.live() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := n.FSM().WaitApplied(ctx, index)
		cancel()
		if err != nil {
			c.t.Fatalf("%s did not apply index %d: %v", n.ID(), index, err)
		}
	}
}

// regionClient is a nearest-node client of region, seeded with every live
// node: it discovers the cluster, prefers region's nodes and fails over.
// DownFor and the refresh are shortened so a test's few seconds see what
// production's minutes would.
func (c *regionCluster) regionClient(region string, tweak func(*client.Config)) *client.Client {
	c.t.Helper()
	var seeds []string
	for _, n := range c.live() {
		seeds = append(seeds, n.APIAddr())
	}
	cfg := client.DefaultConfig(seeds...)
	cfg.Insecure, cfg.Region = true, region
	cfg.RefreshInterval, cfg.DownFor = time.Second, time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// pinnedClient talks to node i only (no discovery, one attempt): what a
// caller inside a partition, or a probe of one replica, sees.
func (c *regionCluster) pinnedClient(i int) *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig(c.nodes[i].APIAddr())
	cfg.Insecure, cfg.DisableDiscovery, cfg.MaxAttempts = true, true, 1
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// dumpLogsOnFailure keeps the nodes' logs of a failed test in a file (the
// data dir is removed) and says where.
func (c *regionCluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name())
	path := filepath.Join(os.TempDir(), fmt.Sprintf("meridian-%s-%d.log", name, time.Now().UnixNano()))
	if err := os.WriteFile(path, c.logs.Bytes(), 0o600); err == nil {
		c.t.Logf("node logs: %s", path)
	}
}

// rawAPI is a bare gRPC stub for node addr: no retries, no routing, so a
// measurement sees exactly one node's answer.
func rawAPI(t testing.TB, addr string) apiv1.KeyManagementClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1.NewKeyManagementClient(conn)
}

// workload runs Encrypt+Decrypt round trips through one client until
// stopped, counting successes and keeping every failure.
type workload struct {
	name string
	cl   *client.Client
	key  string

	mu       sync.Mutex
	ok       int
	failures []error
	servedBy map[string]int // region -> calls served there
	// failovers counts calls that needed more than one attempt.
	failovers int
	// okAfter counts successes since the start or the last mark().
	okAfter int

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// startWorkload starts a workload; it is stopped by finish or, if the
// test ends first, by the test's cleanup.
func startWorkload(t testing.TB, name string, cl *client.Client, key string) *workload {
	w := &workload{name: name, cl: cl, key: key, servedBy: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.halt)
	return w
}

// halt stops the workload and waits for its last call.
func (w *workload) halt() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

func (w *workload) run() {
	defer close(w.done)
	pt := []byte("workload " + w.name)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		err := w.roundTrip(pt)
		w.mu.Lock()
		if err != nil {
			w.failures = append(w.failures, err)
		} else {
			w.ok++
			w.okAfter++
		}
		w.mu.Unlock()
	}
}

func (w *workload) roundTrip(pt []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var info client.CallInfo
	enc, err := w.cl.Encrypt(client.WithCallInfo(ctx, &info), &apiv1.EncryptRequest{KeyId: w.key, Plaintext: pt})
	if err != nil {
		return fmt.Errorf("encrypt (attempts %v): %w", info.Tries, err)
	}
	w.served(&info)
	dec, err := w.cl.Decrypt(client.WithCallInfo(ctx, &info), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
	if err != nil {
		return fmt.Errorf("decrypt (attempts %v): %w", info.Tries, err)
	}
	w.served(&info)
	if string(dec.GetPlaintext()) != string(pt) {
		return fmt.Errorf("decrypt returned %q, want %q", dec.GetPlaintext(), pt)
	}
	return nil
}

func (w *workload) served(info *client.CallInfo) {
	w.mu.Lock()
	w.servedBy[info.Region]++
	if info.Attempts > 1 {
		w.failovers++
	}
	w.mu.Unlock()
}

// retried is how many calls needed more than one attempt.
func (w *workload) retried() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failovers
}

// mark starts counting successes anew (okAfter) and forgets where calls
// were served so far.
func (w *workload) mark() {
	w.mu.Lock()
	w.okAfter = 0
	clear(w.servedBy)
	w.mu.Unlock()
}

func (w *workload) succeededSinceMark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.okAfter
}

// finish stops the workload and reports every failure as a test error.
func (w *workload) finish(t testing.TB) (ok int, servedBy map[string]int) {
	t.Helper()
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, err := range w.failures {
		if i == 5 {
			t.Errorf("workload %s: %d more failures", w.name, len(w.failures)-5)
			break
		}
		t.Errorf("workload %s: data-plane call failed: %v", w.name, err)
	}
	if w.ok == 0 {
		t.Errorf("workload %s made no successful call", w.name)
	}
	return w.ok, maps.Clone(w.servedBy)
}

// ctxFor is a context that ends after d (or with the test).
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
