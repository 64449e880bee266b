package node_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/internal/wait"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
)

// TestPartitionedRegion cuts one region (not the leader's) away from the
// other two. Inside it the data plane keeps serving from the local replica
// and writes are refused as Unavailable (no quorum); a key with a 2 s
// max_staleness stops being served there once the node has not heard from
// the leader for 2 s; a key disabled on the majority side meanwhile is
// refused there once the partition heals.
func TestPartitionedRegion(t *testing.T) {
	c := startRegions(t, 2, nil)
	c.WaitSpread()
	lr := c.LeaderNode().Region()
	cut := localcluster.Regions[(slices.Index(localcluster.Regions, lr)+1)%3]
	majority := c.RegionClient(lr, nil)

	const bound = 2 * time.Second
	open := mustCreateKey(t, majority, &apiv1.CreateKeyRequest{Description: "no staleness bound"})
	bounded := mustCreateKey(t, majority, &apiv1.CreateKeyRequest{Description: "2s staleness bound",
		MaxStaleness: durationpb.New(bound)})
	if got := bounded.GetKeyMetadata().GetMaxStaleness().AsDuration(); got != bound {
		t.Fatalf("created key reports max staleness %v, want %v", got, bound)
	}
	c.WaitApplied(bounded.GetCommitIndex())
	openID, boundedID := open.GetKeyMetadata().GetKeyId(), bounded.GetKeyMetadata().GetKeyId()

	inside := c.InRegion(cut)[0]
	pin := c.PinnedClient(inside)
	pt := []byte("served inside the partition")
	encrypt := func(id string) error {
		_, err := pin.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: id, Plaintext: pt})
		return err
	}
	openCT, err := pin.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: openID, Plaintext: pt})
	if err != nil {
		t.Fatalf("encrypt on %s before the partition: %v", c.Nodes[inside].ID(), err)
	}
	if err := encrypt(boundedID); err != nil {
		t.Fatalf("bounded key on %s before the partition: %v", c.Nodes[inside].ID(), err)
	}

	for _, r := range localcluster.Regions {
		if r != cut {
			c.Sim.Partition(cut, r)
		}
	}
	cutAt := time.Now()

	// The bounded key is served until the node's last leader contact is
	// older than the bound, then refused with Unavailable, which sends a
	// nearest-node client elsewhere.
	var lastServed, refusedAt time.Duration
	var refusal error
	_ = wait.For(bound+2*time.Second, 0, func() bool {
		err := encrypt(boundedID)
		at := time.Since(cutAt)
		if err == nil {
			lastServed = at
			return false
		}
		refusedAt, refusal = at, err
		return true
	})
	switch {
	case refusal == nil:
		t.Fatalf("bounded key still served on %s %v after the partition (bound %v)", c.Nodes[inside].ID(), time.Since(cutAt).Round(time.Millisecond), bound)
	case !client.IsUnavailable(refusal):
		t.Fatalf("bounded key on the stale node: got %v, want Unavailable", refusal)
	case refusedAt < bound-200*time.Millisecond:
		t.Errorf("bounded key refused %v after the partition, before its %v bound: %v", refusedAt, bound, refusal)
	case lastServed < bound/2:
		t.Errorf("bounded key last served %v after the partition; want service until near the %v bound", lastServed, bound)
	}
	t.Logf("bounded key: last served %v, refused %v after the cut: %v", lastServed.Round(time.Millisecond), refusedAt.Round(time.Millisecond), refusal)

	// The data plane without a bound keeps working from the local replica.
	if _, err := pin.Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: openCT.GetCiphertextBlob()}); err != nil {
		t.Errorf("decrypt inside the partition: %v", err)
	}
	// Writes inside the minority are refused, promptly and as no quorum.
	const writeDeadline = 1500 * time.Millisecond
	start := time.Now()
	_, err = pin.CreateKey(ctxFor(t, writeDeadline), &apiv1.CreateKeyRequest{Description: "minority write"})
	took := time.Since(start)
	if !client.IsUnavailable(err) {
		t.Errorf("write inside the partition: got %v (exception %q) after %v, want Unavailable (no quorum)", err, client.ExceptionOf(err), took.Round(time.Millisecond))
	} else {
		t.Logf("write inside the partition refused after %v: %v", took.Round(time.Millisecond), err)
	}
	if took > writeDeadline+500*time.Millisecond {
		t.Errorf("write inside the partition answered after %v with a %v deadline", took, writeDeadline)
	}

	// The majority disables the open key; the cut-off replica cannot know.
	dis, err := majority.DisableKey(ctxT(t), &apiv1.DisableKeyRequest{KeyId: openID})
	if err != nil {
		t.Fatalf("disable on the majority side: %v", err)
	}
	if err := encrypt(openID); err != nil {
		t.Errorf("open key inside the partition before the heal: %v (the replica cannot have learnt of the disable)", err)
	}

	c.Sim.HealAll()
	healed := time.Now()
	var last error
	if wait.For(nodetest.WaitTimeout, 0, func() bool { last = encrypt(openID); return client.IsDisabled(last) }) != nil {
		t.Fatalf("%s still serves the key disabled during the partition %v after the heal: %v", c.Nodes[inside].ID(), nodetest.WaitTimeout, last)
	}
	t.Logf("disabled key refused inside the healed region %v after the heal", time.Since(healed).Round(time.Millisecond))
	if err := c.Nodes[inside].FSM().WaitApplied(ctxT(t), dis.GetCommitIndex()); err != nil {
		t.Fatal(err)
	}
	if wait.For(nodetest.WaitTimeout, 0, func() bool { last = encrypt(boundedID); return last == nil }) != nil {
		t.Errorf("bounded key not served again after the heal: %v", last)
	}
}
