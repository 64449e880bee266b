package checker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// builder writes histories by hand, in milliseconds.
type builder struct{ h history.History }

func (b *builder) add(clientID int, kind history.Kind, key string, inv, cmp int, outcome history.Outcome, out history.Output) int {
	i := len(b.h.Ops)
	b.h.Ops = append(b.h.Ops, history.Op{
		Index: i, Client: clientID, Kind: kind, KeyID: key, Output: out,
		Invoke: ms(inv), Complete: ms(cmp), Outcome: outcome,
	})
	return i
}

func (b *builder) op(i int) *history.Op { return &b.h.Ops[i] }

func (b *builder) done(t *testing.T) *history.History {
	t.Helper()
	for _, op := range b.h.Ops {
		b.h.End = max(b.h.End, op.Complete+time.Millisecond)
	}
	if err := b.h.Validate(); err != nil {
		t.Fatal(err)
	}
	h := b.h
	return &h
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func ok(o history.Output) history.Output { return o }

func failed(ex string) history.Output { return history.Output{Error: ex} }

func testOptions() Options {
	o := DefaultOptions()
	o.StalenessBound = 0
	o.LinearizabilityTimeout = 20 * time.Second
	o.RPOTimeout = 10 * time.Second
	return o
}

// memCluster is a cluster whose replicas are maps: the RPO checks only
// need answers, and a map lets a test lose a write on purpose.
type memCluster struct {
	mu    sync.Mutex
	nodes []string
	keys  map[string]map[string]KeyInfo // node -> key -> info
	seals map[string]map[string][]byte  // node -> ciphertext -> plaintext
	down  map[string]bool
	// busy[node] answers that many calls Unavailable before serving, as
	// a loaded or catching-up node does.
	busy map[string]int
}

func newMemCluster(nodes ...string) *memCluster {
	c := &memCluster{nodes: nodes, keys: map[string]map[string]KeyInfo{}, seals: map[string]map[string][]byte{}, down: map[string]bool{}, busy: map[string]int{}}
	for _, n := range nodes {
		c.keys[n], c.seals[n] = map[string]KeyInfo{}, map[string][]byte{}
	}
	return c
}

func (c *memCluster) putKey(key string, info KeyInfo) {
	for _, n := range c.nodes {
		c.keys[n][key] = info
	}
}

func (c *memCluster) seal(ct, pt []byte) {
	for _, n := range c.nodes {
		c.seals[n][string(ct)] = pt
	}
}

func (c *memCluster) Nodes() []string { return c.nodes }

func (c *memCluster) Describe(ctx context.Context, node, key string) (KeyInfo, error) {
	c.mu.Lock()
	down := c.down[node]
	info, ok := c.keys[node][key]
	busy := c.takeBusy(node)
	c.mu.Unlock()
	if busy {
		return KeyInfo{}, &client.Error{Code: codes.Unavailable, Message: "node busy"}
	}
	if down {
		<-ctx.Done()
		return KeyInfo{}, &client.Error{Code: codes.DeadlineExceeded}
	}
	if !ok {
		return KeyInfo{}, &client.Error{Code: codes.NotFound, Exception: string(client.NotFound), Message: "key " + key}
	}
	return info, nil
}

func (c *memCluster) Decrypt(ctx context.Context, node string, ct []byte, ec map[string]string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.takeBusy(node) {
		return nil, &client.Error{Code: codes.Unavailable, Message: "node busy"}
	}
	pt, ok := c.seals[node][string(ct)]
	if !ok {
		return nil, &client.Error{Code: codes.InvalidArgument, Exception: string(client.InvalidCiphertext)}
	}
	return pt, nil
}

// takeBusy consumes one busy answer of node; c.mu must be held.
func (c *memCluster) takeBusy(node string) bool {
	if c.busy[node] > 0 {
		c.busy[node]--
		return true
	}
	return false
}

func mustCheck(t *testing.T, h *history.History, cl Cluster, opt Options) *Verdict {
	t.Helper()
	v, err := Check(context.Background(), h, cl, opt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func describe(state string, version int) history.Output {
	return history.Output{State: state, KeyVersion: version, Node: "n1"}
}

func keyName(i int) string { return fmt.Sprintf("k-%03d", i) }

// disabledKey starts a history with key k created at [0,1] and disabled
// by client 0 over [2,end]: the prefix most state-flip cases share.
func disabledKey(b *builder, end int) {
	b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
	b.add(0, history.DisableKey, "k", 2, end, history.Ok, history.Output{})
}

// unknownEnable follows disabledKey(b, 3) with client 2's enable of k at
// [4,5] whose outcome is unknown (the client saw errMsg).
func unknownEnable(b *builder, errMsg string) {
	disabledKey(b, 3)
	b.add(2, history.EnableKey, "k", 4, 5, history.Unknown, history.Output{Error: errMsg})
}
