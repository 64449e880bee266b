package client

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/fakekms"
	"github.com/meridiankms/meridian/internal/testwait"
)

// startNode serves a fake node in region, listed in c's members, that
// answers every call after delay (so probes see it as RTT). It stops when
// the test ends, or at Stop.
func startNode(t testing.TB, c *fakekms.Cluster, id, region string, delay time.Duration) *fakekms.Server {
	t.Helper()
	return fakekms.Start(t, fakekms.Config{ID: id, Region: region, Cluster: c, Faults: fakekms.Faults{Delay: delay}})
}

// newClusterClient connects to seed with fast retries and no background
// timers unless mod sets them.
func newClusterClient(t testing.TB, region string, mod func(*Config), seeds ...string) *Client {
	t.Helper()
	return newTestClient(t, func(cfg *Config) {
		cfg.Region, cfg.BackoffMax = region, 10*time.Millisecond
		if mod != nil {
			mod(cfg)
		}
	}, seeds...)
}

func nodeAddrs(c *Client) []string {
	var out []string
	for _, s := range c.Nodes() {
		out = append(out, s.Addr)
	}
	return out
}

func encrypt(t testing.TB, c *Client) CallInfo {
	t.Helper()
	var info CallInfo
	if _, err := c.Encrypt(WithCallInfo(context.Background(), &info), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt: %v (tries %+v)", err, info.Tries)
	}
	return info
}

func TestNearestPrefersOwnRegionThenRTT(t *testing.T) {
	b := &fakekms.Cluster{}
	// Delays far apart, so a busy test machine cannot reorder them.
	a := startNode(t, b, "a", "us-east", 120*time.Millisecond)
	bb := startNode(t, b, "b", "eu-west", 0)
	c := startNode(t, b, "c", "eu-west", 60*time.Millisecond)
	d := startNode(t, b, "d", "ap-south", 25*time.Millisecond)
	tests := []struct {
		region string
		want   *fakekms.Server
		order  []*fakekms.Server
	}{
		{"us-east", a, []*fakekms.Server{a, bb, d, c}}, // the only us-east node, though the slowest
		{"eu-west", bb, []*fakekms.Server{bb, c, d, a}},
		{"ap-south", d, []*fakekms.Server{d, bb, c, a}},
		{"", bb, []*fakekms.Server{bb, d, c, a}},        // no region: RTT alone
		{"sa-east", bb, []*fakekms.Server{bb, d, c, a}}, // no node in the client's region
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			cl := newClusterClient(t, tt.region, nil, c.Addr()) // any seed will do
			info := encrypt(t, cl)
			if info.NodeID != tt.want.ID() || info.Region != tt.want.Region() || info.Addr != tt.want.Addr() || info.Attempts != 1 {
				t.Fatalf("served by %s/%s (%s) in %d attempts, want %s", info.NodeID, info.Region, info.Addr, info.Attempts, tt.want.ID())
			}
			var want []string
			for _, n := range tt.order {
				want = append(want, n.Addr())
			}
			if got := nodeAddrs(cl); !slices.Equal(got, want) {
				t.Fatalf("rank %v, want %v (%+v)", got, want, cl.Nodes())
			}
		})
	}
}

// Killing the nearest node mid-run costs callers nothing: every call
// succeeds, and they move to the next-nearest.
func TestFailoverWhenNearestStops(t *testing.T) {
	b := &fakekms.Cluster{}
	near := startNode(t, b, "near", "eu-west", 0)
	startNode(t, b, "next", "eu-west", 10*time.Millisecond)
	far := startNode(t, b, "far", "us-east", 40*time.Millisecond)
	cl := newClusterClient(t, "eu-west", nil, far.Addr())

	var mu sync.Mutex
	served := map[string]int{}
	var failures []error
	var stopped atomic.Bool
	failedOverFromNear := false
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var info CallInfo
				_, err := cl.Encrypt(WithCallInfo(context.Background(), &info), &apiv1.EncryptRequest{KeyId: "k", Plaintext: []byte("p")})
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else if stopped.Load() {
					served[info.NodeID]++
					if len(info.Tries) > 1 && info.Tries[0].NodeID == "near" && info.Tries[0].Err != nil {
						failedOverFromNear = true
					}
				} else {
					served["before:"+info.NodeID]++
				}
				mu.Unlock()
			}
		})
	}
	counts := func(k string) int {
		mu.Lock()
		defer mu.Unlock()
		return served[k]
	}
	testwait.Eventually(t, 10*time.Second, "20 calls served by the nearest node", func() bool { return counts("before:near") >= 20 })
	near.Stop()
	stopped.Store(true)
	testwait.Eventually(t, 10*time.Second, "50 calls served by the next-nearest after the kill", func() bool { return counts("next") >= 50 })
	close(done)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failures), failures[0])
	}
	if served["before:next"]+served["before:far"] > 0 || served["far"] > 0 {
		t.Fatalf("calls went past the nearest healthy node: %v", served)
	}
	if !failedOverFromNear {
		t.Fatal("no call recorded a failed attempt at the killed node")
	}
}

// A node that has not applied the client's consistency token answers
// Unavailable and the call is served elsewhere; the token follows the
// highest commit index seen.
func TestConsistencyTokenMovesToCaughtUpNode(t *testing.T) {
	b := &fakekms.Cluster{}
	b.QueueCommits(500, 300, 700)
	near := startNode(t, b, "near", "eu-west", 0)
	far := startNode(t, b, "far", "us-east", 20*time.Millisecond)
	near.Set(func(f *fakekms.Faults) { f.AppliedIndex = 10 })
	cl := newClusterClient(t, "eu-west", nil, near.Addr())

	info := encrypt(t, cl)
	if info.NodeID != "near" || info.ConsistencyToken != 0 || near.Last(t).Token != "" {
		t.Fatalf("before any write: served by %s with token %d (header %q)", info.NodeID, info.ConsistencyToken, near.Last(t).Token)
	}
	if _, err := cl.CreateKey(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	info = encrypt(t, cl)
	if info.NodeID != "far" || info.ConsistencyToken != 500 || far.Last(t).Token != "500" {
		t.Fatalf("after write 500: served by %s, token %d, far saw %q; tries %+v", info.NodeID, info.ConsistencyToken, far.Last(t).Token, info.Tries)
	}
	if len(info.Tries) != 2 || info.Tries[0].NodeID != "near" || CodeOf(info.Tries[0].Err) != codes.Unavailable {
		t.Fatalf("tries = %+v, want a refused attempt at near first", info.Tries)
	}

	// The token is the maximum, not the latest: 300 arrives after 500.
	near.Set(func(f *fakekms.Faults) { f.AppliedIndex = 1 << 40 })
	for _, want := range []uint64{500, 700} {
		if _, err := cl.CreateKey(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if got := cl.LastCommitIndex(); got != want {
			t.Fatalf("LastCommitIndex = %d, want %d", got, want)
		}
	}
	info = encrypt(t, cl)
	if info.ConsistencyToken != 700 {
		t.Fatalf("token sent %d, want 700", info.ConsistencyToken)
	}
	served := map[string]*fakekms.Server{"near": near, "far": far}[info.NodeID]
	if served.Last(t).Token != "700" {
		t.Fatalf("%s saw token %q, want 700", info.NodeID, served.Last(t).Token)
	}

	off := newClusterClient(t, "eu-west", func(c *Config) { c.DisableConsistencyToken = true }, near.Addr())
	off.observeCommit(900)
	if info := encrypt(t, off); info.ConsistencyToken != 0 || near.Last(t).Token != "" {
		t.Fatalf("disabled token still sent: %d / %q", info.ConsistencyToken, near.Last(t).Token)
	}
}

func TestHedgingSendsSecondRequestAfterDelay(t *testing.T) {
	b := &fakekms.Cluster{}
	slow := startNode(t, b, "slow", "eu-west", 0)
	other := startNode(t, b, "other", "eu-west", 20*time.Millisecond)
	slow.Set(func(f *fakekms.Faults) { f.Slow = map[string]time.Duration{"Decrypt": 2 * time.Second} })
	const hedgeAfter = 100 * time.Millisecond
	cl := newClusterClient(t, "eu-west", func(c *Config) { c.HedgeAfter = hedgeAfter }, slow.Addr())

	// A fast answer: no second request.
	if info := encrypt(t, cl); len(info.Tries) != 1 || info.NodeID != "slow" {
		t.Fatalf("fast call: tries %+v", info.Tries)
	}
	if n := other.Count("Encrypt"); n != 0 {
		t.Fatalf("a fast call was hedged: other saw %d", n)
	}

	var info CallInfo
	start := time.Now()
	resp, err := cl.Decrypt(WithCallInfo(context.Background(), &info), &apiv1.DecryptRequest{CiphertextBlob: []byte("x:hello")})
	elapsed := time.Since(start)
	if err != nil || string(resp.GetPlaintext()) != "hello" {
		t.Fatalf("Decrypt = %v, %v", resp, err)
	}
	if info.NodeID != "other" || elapsed >= time.Second {
		t.Fatalf("served by %s after %v, want the hedge at other", info.NodeID, elapsed)
	}
	if slow.Count("Decrypt") != 1 || other.Count("Decrypt") != 1 {
		t.Fatalf("slow saw %d, other %d Decrypts; want 1 each", slow.Count("Decrypt"), other.Count("Decrypt"))
	}
	if gap := other.First("Decrypt").At.Sub(start); gap < hedgeAfter {
		t.Fatalf("hedge arrived %v after the call started, before HedgeAfter %v", gap, hedgeAfter)
	}
	if len(info.Tries) != 2 || info.Tries[0].Hedged || !info.Tries[1].Hedged || info.Tries[1].Err != nil || info.Attempts != 2 {
		t.Fatalf("tries = %+v", info.Tries)
	}
}

func TestAttemptTimeoutFailsOver(t *testing.T) {
	b := &fakekms.Cluster{}
	hung := startNode(t, b, "hung", "eu-west", 0)
	ok := startNode(t, b, "ok", "eu-west", 20*time.Millisecond)
	hung.Set(func(f *fakekms.Faults) { f.Slow = map[string]time.Duration{"Encrypt": 10 * time.Second} })
	cl := newClusterClient(t, "eu-west", func(c *Config) { c.AttemptTimeout = 150 * time.Millisecond }, hung.Addr())
	start := time.Now()
	info := encrypt(t, cl)
	if info.NodeID != "ok" || time.Since(start) > 5*time.Second {
		t.Fatalf("served by %s after %v", info.NodeID, time.Since(start))
	}
	if len(info.Tries) != 2 || CodeOf(info.Tries[0].Err) != codes.DeadlineExceeded {
		t.Fatalf("tries = %+v, want a timed-out attempt first", info.Tries)
	}
	// The hung node is down now: the next call goes straight to ok.
	if info := encrypt(t, cl); len(info.Tries) != 1 || info.NodeID != "ok" {
		t.Fatalf("second call tries = %+v", info.Tries)
	}
	_ = ok
}

func TestUnhealthyNodeIsLastResort(t *testing.T) {
	tests := []struct {
		name   string
		sicken func(b *fakekms.Cluster, n *fakekms.Server)
	}{
		{"members say unhealthy", func(b *fakekms.Cluster, n *fakekms.Server) {
			b.Update(n.ID(), func(m *apiv1.Member) { m.Healthy = false })
		}},
		{"health check says not serving", func(_ *fakekms.Cluster, n *fakekms.Server) {
			n.SetServing(false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakekms.Cluster{}
			sick := startNode(t, b, "sick", "eu-west", 0)
			well := startNode(t, b, "well", "us-east", 20*time.Millisecond)
			tt.sicken(b, sick)
			cl := newClusterClient(t, "eu-west", nil, sick.Addr())
			if info := encrypt(t, cl); info.NodeID != "well" {
				t.Fatalf("served by %s, want the healthy node in another region", info.NodeID)
			}
			well.Stop()
			if info := encrypt(t, cl); info.NodeID != "sick" {
				t.Fatalf("with the healthy node gone, served by %s (tries %+v)", info.NodeID, info.Tries)
			}
		})
	}
}

func TestRefreshAddsNewAndDropsLeftOrDeadNodes(t *testing.T) {
	b := &fakekms.Cluster{}
	a := startNode(t, b, "a", "eu-west", 0)
	gone := startNode(t, b, "gone", "eu-west", 0)
	dead := startNode(t, b, "dead", "eu-west", 0)
	b.Update("dead", func(m *apiv1.Member) { m.Status = apiv1.MemberStatus_MEMBER_STATUS_DEAD })
	cl := newClusterClient(t, "eu-west", func(c *Config) {
		c.RefreshInterval = 20 * time.Millisecond
		c.ProbeInterval = 20 * time.Millisecond
	}, a.Addr())
	if got := cl.Nodes(); len(got) != 2 || slices.Contains(nodeAddrs(cl), dead.Addr()) {
		t.Fatalf("nodes %+v, want a and gone (dead excluded)", got)
	}

	added := startNode(t, b, "added", "eu-west", 0)
	b.Update("gone", func(m *apiv1.Member) { m.Status = apiv1.MemberStatus_MEMBER_STATUS_LEFT })
	testwait.Eventually(t, 5*time.Second, "refresh picks up added and drops gone", func() bool {
		got := nodeAddrs(cl)
		slices.Sort(got)
		want := []string{a.Addr(), added.Addr()}
		slices.Sort(want)
		return slices.Equal(got, want)
	})
	for range 20 {
		if info := encrypt(t, cl); info.NodeID != "a" && info.NodeID != "added" {
			t.Fatalf("call served by %s", info.NodeID)
		}
	}
	if gone.Count("Encrypt")+dead.Count("Encrypt") != 0 {
		t.Fatal("a LEFT or DEAD node was routed to")
	}
	// The refresh adds the node before its first probe answers (20 ms
	// interval, later on a busy machine): wait for the probe, do not race it.
	testwait.Eventually(t, 5*time.Second, "the added node probed and described", func() bool {
		for _, s := range cl.Nodes() {
			if s.Addr == added.Addr() {
				return s.RTT > 0 && s.ID == "added" && s.Zone == "eu-westa" && s.Status == apiv1.MemberStatus_MEMBER_STATUS_ALIVE
			}
		}
		return false
	})
}

type encryptResult struct {
	info CallInfo
	err  error
}

// encryptAsync encrypts in the background (t.Fatal must not be called
// off the test's goroutine).
func encryptAsync(c *Client) <-chan encryptResult {
	done := make(chan encryptResult, 1)
	go func() {
		var r encryptResult
		_, r.err = c.Encrypt(WithCallInfo(context.Background(), &r.info), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")})
		done <- r
	}()
	return done
}

// TestRefreshLetsCallsInFlightFinish: a refresh that drops a node (gossip
// on a loaded machine briefly calls it dead) does not cancel the call that
// node is answering; its connection closes once the call ends.
func TestRefreshLetsCallsInFlightFinish(t *testing.T) {
	b := &fakekms.Cluster{}
	a := startNode(t, b, "a", "eu-west", 0)
	startNode(t, b, "other", "us-east", 0)
	cl := newClusterClient(t, "eu-west", func(c *Config) {
		c.RefreshInterval = 20 * time.Millisecond
		c.ProbeInterval = 20 * time.Millisecond
	}, a.Addr())
	a.Set(func(f *fakekms.Faults) { f.Slow = map[string]time.Duration{"Encrypt": 500 * time.Millisecond} })
	done := encryptAsync(cl)
	testwait.Eventually(t, 5*time.Second, "the call reaches a", func() bool { return a.Count("Encrypt") == 1 })
	b.Update("a", func(m *apiv1.Member) { m.Status = apiv1.MemberStatus_MEMBER_STATUS_DEAD })
	testwait.Eventually(t, 5*time.Second, "the refresh drops a", func() bool { return !slices.Contains(nodeAddrs(cl), a.Addr()) })
	res := <-done
	if res.err != nil || res.info.NodeID != "a" || len(res.info.Tries) != 1 {
		t.Errorf("the call in flight on a dropped node: %v, served by %q after tries %+v, want a, once", res.err, res.info.NodeID, res.info.Tries)
	}
}

// TestCallReroutesAfterTheRefreshDroppedItsNodes: a call that started
// with a view whose nodes a refresh then dropped (their connections
// closed) spends its remaining attempts on the current view, not on the
// other dropped nodes.
func TestCallReroutesAfterTheRefreshDroppedItsNodes(t *testing.T) {
	b := &fakekms.Cluster{}
	a := startNode(t, b, "a", "eu-west", 0)
	for _, id := range []string{"b1", "b2", "b3"} {
		startNode(t, b, id, "eu-west", 30*time.Millisecond)
	}
	startNode(t, b, "other", "us-east", 60*time.Millisecond)
	cl := newClusterClient(t, "eu-west", func(c *Config) {
		c.RefreshInterval, c.ProbeInterval = 20*time.Millisecond, 20*time.Millisecond
		c.HedgeAfter, c.MaxAttempts, c.AttemptTimeout = 0, 3, time.Minute
	}, a.Addr())
	testwait.Eventually(t, 5*time.Second, "every node probed", func() bool {
		for _, s := range cl.Nodes() {
			if s.RTT == 0 {
				return false
			}
		}
		return len(cl.Nodes()) == 5
	})
	// a, the nearest, holds the call until the b nodes are dropped, then
	// dies under it.
	a.Set(func(f *fakekms.Faults) { f.Slow = map[string]time.Duration{"Encrypt": time.Minute} })
	done := encryptAsync(cl)
	testwait.Eventually(t, 5*time.Second, "the call reaches a", func() bool { return a.Count("Encrypt") == 1 })
	for _, id := range []string{"b1", "b2", "b3"} {
		b.Update(id, func(m *apiv1.Member) { m.Status = apiv1.MemberStatus_MEMBER_STATUS_DEAD })
	}
	testwait.Eventually(t, 10*time.Second, "the refresh drops b1-b3", func() bool { return len(cl.Nodes()) == 2 })
	a.Stop()
	if res := <-done; res.err != nil || res.info.NodeID != "other" {
		t.Errorf("%v: served by %q after tries %+v, want other", res.err, res.info.NodeID, res.info.Tries)
	}
}

// Without the Members RPC (an older server) the configured addresses are
// the node set, and failing over between them still works.
func TestWithoutMembersUsesConfiguredAddrs(t *testing.T) {
	b := &fakekms.Cluster{}
	one := startNode(t, b, "one", "", 0)
	two := startNode(t, b, "two", "", 20*time.Millisecond)
	for _, n := range []*fakekms.Server{one, two} {
		n.Set(func(f *fakekms.Faults) { f.NoMembers = true })
	}
	single := newClusterClient(t, "", nil, two.Addr())
	if got := nodeAddrs(single); !slices.Equal(got, []string{two.Addr()}) {
		t.Fatalf("single address: nodes %v", got)
	}
	if info := encrypt(t, single); info.Addr != two.Addr() || info.NodeID != "" {
		t.Fatalf("single address: %+v", info)
	}

	cl := newClusterClient(t, "", nil, two.Addr(), one.Addr())
	if got := nodeAddrs(cl); !slices.Equal(got, []string{one.Addr(), two.Addr()}) {
		t.Fatalf("nodes %v, want the lower-RTT address first", got)
	}
	one.Stop()
	for range 5 {
		if info := encrypt(t, cl); info.Addr != two.Addr() {
			t.Fatalf("served by %s after one stopped", info.Addr)
		}
	}
}

func TestCloseStopsBackgroundWork(t *testing.T) {
	b := &fakekms.Cluster{}
	a := startNode(t, b, "a", "eu-west", 0)
	startNode(t, b, "b", "us-east", 0)
	before := runtime.NumGoroutine()
	cfg := DefaultConfig(a.Addr())
	cfg.Insecure = true
	cfg.RefreshInterval = 5 * time.Millisecond
	cfg.ProbeInterval = 5 * time.Millisecond
	cfg.HedgeAfter = time.Millisecond
	cl, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		encrypt(t, cl)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Encrypt(context.Background(), &apiv1.EncryptRequest{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	testwait.Eventually(t, 10*time.Second, "goroutines back to the count before New", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestConfigValidateRouting(t *testing.T) {
	for name, bad := range map[string]func(*Config){
		"keepalive more often than servers allow": func(c *Config) { c.KeepaliveTime = 5 * time.Second },
		"keepalive without timeout":               func(c *Config) { c.KeepaliveTimeout = 0 },
		"negative attempt timeout":                func(c *Config) { c.AttemptTimeout = -1 },
		"negative hedge":                          func(c *Config) { c.HedgeAfter = -1 },
		"no probe interval":                       func(c *Config) { c.ProbeInterval = 0 },
		"no refresh interval":                     func(c *Config) { c.RefreshInterval = 0 },
		"no down period":                          func(c *Config) { c.DownFor = 0 },
	} {
		cfg := DefaultConfig("127.0.0.1:1")
		cfg.Insecure = true
		bad(&cfg)
		if cfg.Validate() == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	cfg := DefaultConfig("127.0.0.1:1")
	cfg.Insecure = true
	cfg.KeepaliveTime = 0 // pings off is fine
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
