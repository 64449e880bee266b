package node_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/internal/wait"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
	"github.com/meridiankms/meridian/transport"
)

// TestRegionsPlacementFailoverAndRegionLoss runs the multi-region
// guarantees on one 3 regions x 2 nodes cluster, in order (each phase
// starts from the state the previous one restored): voters placed 2-2-1; a
// key created in one region usable at once in another; a killed leader
// replaced with no data-plane call failing; a whole region lost and back.
func TestRegionsPlacementFailoverAndRegionLoss(t *testing.T) {
	c := startRegions(t, 2, nil)
	t.Logf("placement: %v", c.WaitSpread())

	crossRegionUseIsImmediate(t, c)
	key := mustCreateKey(t, c.RegionClient(localcluster.Regions[0], nil), &apiv1.CreateKeyRequest{Description: "workload"})
	c.WaitApplied(key.GetCommitIndex())
	id := key.GetKeyMetadata().GetKeyId()
	leaderKillUnderLoad(t, c, id)
	regionLossAndReturn(t, c, id)
}

// crossRegionUseIsImmediate: a key created through region A decrypts at
// once through a client of region C carrying A's consistency token, even
// while C's replicas lag: C's node waits for the token instead of
// answering NotFound.
func crossRegionUseIsImmediate(t *testing.T, c *nodetest.T) {
	t.Helper()
	// C: a region without the leader, the one with fewer voters, so that
	// cutting it off leaves the most voters (4 of 5) with the leader.
	lr := c.LeaderNode().Region()
	v := c.Voters()
	var others []string
	for _, r := range localcluster.Regions {
		if r != lr {
			others = append(others, r)
		}
	}
	if len(v[others[1]]) < len(v[others[0]]) {
		others[0], others[1] = others[1], others[0]
	}
	rc, ra := others[0], others[1] // A forwards its writes to the leader's region
	clA := c.RegionClient(ra, nil)
	// Routing frozen as New found it: a refresh during the cut below could
	// see C's nodes unready (no leader) and send the call elsewhere.
	clC := c.RegionClient(rc, func(cfg *client.Config) { cfg.RefreshInterval, cfg.DownFor = time.Minute, time.Minute })

	// Cut C off so its replicas cannot have the key when the decrypt
	// arrives; heal shortly after.
	for _, r := range localcluster.Regions {
		if r != rc {
			c.Sim.Partition(rc, r)
		}
	}
	res := mustCreateKey(t, clA, &apiv1.CreateKeyRequest{Description: "made in " + ra})
	id := res.GetKeyMetadata().GetKeyId()
	pt := []byte("created in one region, used in another")
	enc, err := clA.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: id, Plaintext: pt})
	if err != nil {
		t.Fatalf("encrypt through %s: %v", ra, err)
	}
	token := clA.LastCommitIndex()
	if token < res.GetCommitIndex() {
		t.Fatalf("client token %d below the create's commit index %d", token, res.GetCommitIndex())
	}
	for _, i := range c.InRegion(rc) {
		if _, ok := c.Nodes[i].FSM().Key(id); ok {
			t.Fatalf("%s in %s has the key although its region is cut off", c.Nodes[i].ID(), rc)
		}
	}
	heal := time.AfterFunc(300*time.Millisecond, c.Sim.HealAll)
	defer heal.Stop()

	// The token travels with the application (here: as the header a
	// client would send), as a key id handed from one service to another.
	ctx := metadata.AppendToOutgoingContext(ctxT(t), client.ConsistencyTokenHeader, strconv.FormatUint(token, 10))
	var info client.CallInfo
	start := time.Now()
	dec, err := clC.Decrypt(client.WithCallInfo(ctx, &info), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
	if err != nil {
		t.Fatalf("decrypt through %s right after the create in %s: %v (tries %v)", rc, ra, err, info.Tries)
	}
	if !bytes.Equal(dec.GetPlaintext(), pt) {
		t.Fatalf("decrypt through %s: got %q", rc, dec.GetPlaintext())
	}
	if info.Region != rc {
		t.Errorf("decrypt served by %s in %s, want a node of %s (tries %v)", info.NodeID, info.Region, rc, info.Tries)
	}
	applied, _ := strconv.ParseUint(firstOf(info.Header.Get(transport.AppliedIndexHeader)), 10, 64)
	if applied < token {
		t.Errorf("serving node reported applied index %d, below the token %d", applied, token)
	}
	t.Logf("decrypt in %s served by %s after %v (%d attempts), token %d, applied %d",
		rc, info.NodeID, time.Since(start).Round(time.Millisecond), info.Attempts, token, applied)
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// leaderKillUnderLoad: four nearest-node clients of different regions run
// Encrypt/Decrypt while the leader is closed; a new leader is elected,
// writes resume, and not one data-plane call fails.
func leaderKillUnderLoad(t *testing.T, c *nodetest.T, key string) {
	t.Helper()
	leader := c.LeaderNode()
	li := c.Index(leader.ID())
	// One client of the leader's region is made to prefer the leader itself
	// (every other node looks 40 ms further away), so the kill certainly
	// takes its preferred node away rather than only in theory.
	far := netsim.New()
	far.SetDefault(20*time.Millisecond, 0)
	for _, n := range c.Live() {
		if n != leader {
			far.Register(n.APIAddr(), "far")
		}
	}
	var nearLeader *client.Client
	for range 3 { // RTT probes under -race on busy cores are noisy
		nearLeader = c.RegionClient(leader.Region(), func(cfg *client.Config) {
			cfg.DialOptions = append(cfg.DialOptions, far.Host("near", "").DialOption())
		})
		if nearLeader.Addr() == leader.APIAddr() {
			break
		}
	}
	if nearLeader.Addr() != leader.APIAddr() {
		t.Fatalf("client meant to prefer the leader %s routes to %s first: %+v", leader.APIAddr(), nearLeader.Addr(), nearLeader.Nodes())
	}
	ws := []*nodetest.Workload{nodetest.StartWorkload(t, "leader-"+leader.Region(), nearLeader, key)}
	for _, r := range localcluster.Regions {
		ws = append(ws, nodetest.StartWorkload(t, r, c.RegionClient(r, nil), key))
	}
	waitWorkloads(t, c, ws, 5)

	killed := time.Now()
	c.Stop(li)
	testwait.Eventually(t, nodetest.WaitTimeout, "a new leader", func() bool { return c.LeaderNode() != nil })
	elected := time.Since(killed)
	for _, w := range ws {
		w.Mark()
	}
	res := mustCreateKey(t, c.RegionClient(localcluster.Regions[1], nil), &apiv1.CreateKeyRequest{Description: "after leader kill"})
	t.Logf("leader %s killed: new leader %s after %v, first write committed after %v",
		leader.ID(), c.LeaderNode().ID(), elected.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	waitWorkloads(t, c, ws, 5)
	for _, w := range ws {
		ok, served := w.Finish(t)
		t.Logf("workload %s: %d round trips, %d failed over, served since the kill by %v", w.Name, ok, w.Retried(), served)
	}
	// Whether a call was in flight at the kill (and so retried on another
	// node) or the client saw the connection go and routed the next call
	// away is timing: on a loaded machine the workload makes few calls and
	// the graceful stop lets in-flight ones finish. The behaviour is that
	// its preferred node went away and none of its calls failed (finish).
	t.Logf("the client that preferred the leader retried %d calls on another node mid-call", ws[0].Retried())

	c.Start(li)
	c.WaitApplied(res.GetCommitIndex())
}

// waitWorkloads waits until every workload made n more successful round
// trips since its mark (or start).
func waitWorkloads(t *testing.T, c *nodetest.T, ws []*nodetest.Workload, n int) {
	t.Helper()
	if wait.For(nodetest.WaitTimeout, 0, func() bool {
		for _, w := range ws {
			if w.SucceededSinceMark() < n {
				return false
			}
		}
		return true
	}) == nil {
		return
	}
	for _, w := range ws {
		t.Errorf("workload %s", w)
	}
	t.Fatalf("workloads made no progress within %v", nodetest.WaitTimeout)
}

// regionLossAndReturn: every node of a region with two voters (the
// leader's if it has two) is closed. Writes continue in the others, that
// region's clients fail over with no error returned, autopilot never
// leaves the voters without a live majority, and when the region returns
// its nodes catch up and the 2-2-1 spread is restored.
func regionLossAndReturn(t *testing.T, c *nodetest.T, key string) {
	t.Helper()
	v := c.WaitSpread()
	lost := c.LeaderNode().Region()
	if len(v[lost]) != 2 {
		for _, r := range localcluster.Regions {
			if len(v[r]) == 2 {
				lost = r
				break
			}
		}
	}
	other := localcluster.Regions[(slices.Index(localcluster.Regions, lost)+1)%3]
	clLost, clOther := c.RegionClient(lost, nil), c.RegionClient(other, nil)
	ws := []*nodetest.Workload{nodetest.StartWorkload(t, "in-"+lost, clLost, key), nodetest.StartWorkload(t, "in-"+other, clOther, key)}
	waitWorkloads(t, c, ws, 5)

	victims := c.InRegion(lost)
	var survivors []*node.Node
	dead := map[string]bool{}
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		if slices.Contains(victims, i) {
			dead[n.ID()] = true
		} else {
			survivors = append(survivors, n)
		}
	}
	watch := watchQuorum(t, survivors, dead)
	killed := time.Now()
	for _, i := range victims {
		c.Stop(i)
	}
	for _, w := range ws {
		w.Mark()
	}

	// Writes continue, through the lost region's own client too (its
	// control-plane calls fail over like its data-plane ones).
	var created []string
	var last uint64
	for k := range 4 {
		cl := clOther
		if k%2 == 0 {
			cl = clLost
		}
		res := mustCreateKey(t, cl, &apiv1.CreateKeyRequest{Description: "while " + lost + " is down"})
		created = append(created, res.GetKeyMetadata().GetKeyId())
		last = max(last, res.GetCommitIndex())
	}
	t.Logf("%s lost: 4 writes committed %v after the kill", lost, time.Since(killed).Round(time.Millisecond))
	waitWorkloads(t, c, ws, 10)
	for _, w := range ws {
		ok, served := w.Finish(t)
		if served[lost] > 0 {
			t.Errorf("workload %s: %d calls served by the closed region %s", w.Name, served[lost], lost)
		}
		t.Logf("workload %s: %d round trips, %d failed over, served since the loss by %v", w.Name, ok, w.Retried(), served)
	}
	// Let autopilot act on the dead voters (grace 1.5 s, 2 s rounds) while
	// the watch is on: removing them must never cost the live majority.
	testwait.Eventually(t, nodetest.WaitTimeout, "a dead voter of "+lost+" removed", func() bool {
		return len(c.Voters()[lost]) < 2
	})
	for _, bad := range watch.stop() {
		t.Errorf("quorum at risk: %s", bad)
	}

	for _, i := range victims {
		c.Start(i)
	}
	c.WaitApplied(last)
	for _, i := range victims {
		for _, id := range created {
			if _, ok := c.Nodes[i].FSM().Key(id); !ok {
				t.Errorf("%s came back without key %s written while it was down", c.Nodes[i].ID(), id)
			}
		}
	}
	back := c.WaitSpread()
	if len(back[lost]) == 0 {
		t.Errorf("region %s got no voter back: %v", lost, back)
	}
	t.Logf("%s back: placement %v after %v", lost, back, time.Since(killed).Round(time.Millisecond))
}

// quorumWatch samples the leader's configuration (through a fixed set of
// live nodes, so it never races the test's starts and stops) and records
// every moment the voters that are alive are not a strict majority.
type quorumWatch struct {
	once  sync.Once
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	bad   []string
}

func watchQuorum(t testing.TB, live []*node.Node, dead map[string]bool) *quorumWatch {
	w := &quorumWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { w.stop() })
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
			for _, n := range live {
				if !n.Cluster().IsLeader() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				servers, err := n.Cluster().Servers(ctx)
				cancel()
				if err != nil {
					continue
				}
				voters, alive := 0, 0
				for _, s := range servers {
					if s.Suffrage.String() == "Voter" {
						voters++
						if !dead[string(s.ID)] {
							alive++
						}
					}
				}
				if 2*alive <= voters {
					w.mu.Lock()
					w.bad = append(w.bad, time.Now().Format("15:04:05.000")+": "+strconv.Itoa(alive)+" of "+strconv.Itoa(voters)+" voters alive")
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

func (w *quorumWatch) stop() []string {
	w.once.Do(func() { close(w.stopc) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}
