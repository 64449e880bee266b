package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
)

// TestCreateOnOneNodeUseOnEvery: a key created through a follower is usable
// at once through every node, and a disable made anywhere stops it
// everywhere.
func TestCreateOnOneNodeUseOnEvery(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.WaitLeader()
	creator := (leader + 1) % 3
	res := mustCreateKey(t, c.Client(creator), &apiv1.CreateKeyRequest{Description: "shared"})
	id := res.GetKeyMetadata().GetKeyId()
	c.WaitApplied(res.GetCommitIndex())

	pt := []byte("hello from every region")
	ectx := map[string]string{"app": "orders"}
	for i := range c.Nodes {
		enc, err := c.Client(i).Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: id, Plaintext: pt, EncryptionContext: ectx})
		if err != nil {
			t.Fatalf("encrypt on %s: %v", c.Nodes[i].ID(), err)
		}
		for j := range c.Nodes {
			dec, err := c.Client(j).Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob(), EncryptionContext: ectx})
			if err != nil {
				t.Fatalf("decrypt on %s of ciphertext from %s: %v", c.Nodes[j].ID(), c.Nodes[i].ID(), err)
			}
			if !bytes.Equal(dec.GetPlaintext(), pt) {
				t.Fatalf("decrypt on %s: got %q", c.Nodes[j].ID(), dec.GetPlaintext())
			}
		}
	}

	dis, err := c.Client(leader).DisableKey(ctxT(t), &apiv1.DisableKeyRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitApplied(dis.GetCommitIndex())
	for i := range c.Nodes {
		_, err := c.Client(i).Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: id, Plaintext: pt})
		if !client.IsDisabled(err) {
			t.Fatalf("encrypt on %s after disable: got %v, want DisabledException", c.Nodes[i].ID(), err)
		}
	}
}

// TestRestartFollowerAndLeaderLosesNothing: every acknowledged key survives
// a follower restart and a leader restart, and restarted nodes catch up.
func TestRestartFollowerAndLeaderLosesNothing(t *testing.T) {
	c := startCluster(t, 3, nil)
	var acked []string
	var last uint64
	create := func(via int, n int) {
		for k := 0; k < n; k++ {
			res := mustCreateKey(t, c.Client(via), &apiv1.CreateKeyRequest{})
			acked = append(acked, res.GetKeyMetadata().GetKeyId())
			last = max(last, res.GetCommitIndex())
		}
	}
	leader := c.WaitLeader()
	create(leader, 5)

	follower := (leader + 1) % 3
	c.Stop(follower)
	create(leader, 5)
	c.Start(follower)
	create((leader+2)%3, 3)
	c.WaitApplied(last)

	c.Stop(leader)
	newLeader := c.WaitLeader()
	create(newLeader, 5)
	c.Start(leader)
	c.WaitApplied(last)
	assertKeysEverywhere(t, c, acked)
}

// TestLaggingNodeCatchesUpFromSnapshot: with few trailing logs, a node that
// was down while the log was compacted is restored from a snapshot.
func TestLaggingNodeCatchesUpFromSnapshot(t *testing.T) {
	c := startCluster(t, 3, func(cfg *node.Config) {
		cfg.SnapshotThreshold = 8
		cfg.TrailingLogs = 2
	})
	leader := c.WaitLeader()
	lagging := (leader + 1) % 3
	c.Stop(lagging)
	var acked []string
	var last uint64
	for k := 0; k < 30; k++ {
		res := mustCreateKey(t, c.Client(leader), &apiv1.CreateKeyRequest{})
		acked = append(acked, res.GetKeyMetadata().GetKeyId())
		last = res.GetCommitIndex()
	}
	// Every running node compacts its log, not only the leader: under load
	// leadership can move before the lagging node returns, and a leader
	// that still held the entries would replay them instead.
	snapshotAll(t, c.Nodes)
	c.Start(lagging)
	c.WaitApplied(last)
	if got := c.Nodes[lagging].Cluster().Stats().SnapshotRestores; got == 0 {
		t.Fatalf("lagging node caught up without installing a snapshot")
	}
	assertKeysEverywhere(t, c, acked)
}

func assertKeysEverywhere(t *testing.T, c *nodetest.T, ids []string) {
	t.Helper()
	for _, n := range c.Nodes {
		for _, id := range ids {
			if _, ok := n.FSM().Key(id); !ok {
				t.Fatalf("%s lost acknowledged key %s", n.ID(), id)
			}
		}
		if got := n.FSM().KeyCount(); got != len(ids) {
			t.Fatalf("%s holds %d keys, want %d", n.ID(), got, len(ids))
		}
	}
}

// TestNoPlaintextAtRest: after real operations on every key spec, neither
// the data dirs (bolt files, snapshots, sealed HSM file) nor the captured
// logs contain any unwrapped key material, plaintext, data key or the
// passphrase.
func TestNoPlaintextAtRest(t *testing.T) {
	c := startCluster(t, 3, func(cfg *node.Config) { cfg.SnapshotThreshold = 8; cfg.TrailingLogs = 2 })
	leader := c.WaitLeader()
	cl := c.Client(leader)
	var secrets [][]byte
	secrets = append(secrets, localcluster.Passphrase)
	specs := []apiv1.KeySpec{apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT, apiv1.KeySpec_KEY_SPEC_HMAC_256,
		apiv1.KeySpec_KEY_SPEC_ECC_NIST_P256, apiv1.KeySpec_KEY_SPEC_RSA_2048}
	var sym string
	for _, spec := range specs {
		req := &apiv1.CreateKeyRequest{KeySpec: spec}
		if spec == apiv1.KeySpec_KEY_SPEC_ECC_NIST_P256 {
			req.KeyUsage = apiv1.KeyUsage_KEY_USAGE_SIGN_VERIFY
		}
		res := mustCreateKey(t, cl, req)
		if spec == apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT {
			sym = res.GetKeyMetadata().GetKeyId()
		}
	}
	if _, err := cl.RotateKeyOnDemand(ctxT(t), &apiv1.RotateKeyOnDemandRequest{KeyId: sym}); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 5; k++ {
		pt := make([]byte, 32)
		rand.Read(pt)
		secrets = append(secrets, pt)
		if _, err := cl.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: sym, Plaintext: pt}); err != nil {
			t.Fatal(err)
		}
		dk, err := cl.GenerateDataKey(ctxT(t), &apiv1.GenerateDataKeyRequest{KeyId: sym, KeySpec: apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, dk.GetPlaintext())
	}
	if err := c.Nodes[leader].Cluster().Snapshot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Every version's material, unwrapped here with the test's own HSM.
	keys, _ := c.Nodes[leader].FSM().Keys("", 0)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			m, err := c.Nodes[leader].HSM().Unwrap(ctxT(t), v.GetDomainKeyVersion(), v.GetWrappedMaterial())
			if err != nil {
				t.Fatalf("unwrap %s v%d: %v", k.GetId(), v.GetVersion(), err)
			}
			secrets = append(secrets, m)
		}
	}
	c.CloseAll()

	scan := func(where string, data []byte) {
		for _, s := range secrets {
			probe := s
			if len(probe) > 16 {
				probe = probe[:16] // a 16-byte window is enough to be unmistakable
			}
			if bytes.Contains(data, probe) {
				t.Errorf("%s contains secret bytes (%d-byte secret)", where, len(s))
			}
		}
	}
	files := 0
	err := filepath.WalkDir(c.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		scan(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 6 {
		t.Fatalf("scanned only %d files; expected bolt files, snapshots and the HSM file", files)
	}
	logs := c.Logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("no logs captured")
	}
	scan("logs", logs)
}

// TestBadInputGetsClearErrors drives invalid requests through the real
// stack and expects ValidationException-style answers, never a crash.
func TestBadInputGetsClearErrors(t *testing.T) {
	c := startCluster(t, 1, nil)
	cl := c.Client(0)
	id := mustCreateKey(t, cl, &apiv1.CreateKeyRequest{}).GetKeyMetadata().GetKeyId()
	cases := []struct {
		name string
		call func(context.Context) error
	}{
		{"empty plaintext", func(ctx context.Context) error {
			_, err := cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: id})
			return err
		}},
		{"oversized plaintext", func(ctx context.Context) error {
			_, err := cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: id, Plaintext: make([]byte, 4097)})
			return err
		}},
		{"malformed key id", func(ctx context.Context) error {
			_, err := cl.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: "not a key id!"})
			return err
		}},
		{"bad spec/usage pair", func(ctx context.Context) error {
			_, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{KeySpec: apiv1.KeySpec_KEY_SPEC_HMAC_256, KeyUsage: apiv1.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT})
			return err
		}},
		{"rotation period out of range", func(ctx context.Context) error {
			_, err := cl.EnableKeyRotation(ctx, &apiv1.EnableKeyRotationRequest{KeyId: id, RotationPeriodInDays: 30})
			return err
		}},
		{"deletion window out of range", func(ctx context.Context) error {
			_, err := cl.ScheduleKeyDeletion(ctx, &apiv1.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: 3})
			return err
		}},
		{"random bytes out of range", func(ctx context.Context) error {
			_, err := cl.GenerateRandom(ctx, &apiv1.GenerateRandomRequest{NumberOfBytes: 1025})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctxT(t))
			if !client.IsValidation(err) {
				t.Fatalf("got %v, want ValidationException", err)
			}
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Message == "" {
				t.Fatalf("error has no message: %v", err)
			}
		})
	}
	_, err := cl.DescribeKey(ctxT(t), &apiv1.DescribeKeyRequest{KeyId: "00000000-0000-4000-8000-000000000000"})
	if !client.IsNotFound(err) {
		t.Fatalf("unknown key: got %v, want NotFoundException", err)
	}
	_ = fmt.Sprint()
}

// snapshotAll snapshots (and so compacts the log of) every running node.
func snapshotAll(t *testing.T, nodes []*node.Node) {
	t.Helper()
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if err := n.Cluster().Snapshot(ctxT(t)); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
	}
}
