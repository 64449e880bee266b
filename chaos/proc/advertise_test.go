package proc_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos/proc"
	"github.com/meridiankms/meridian/client"
)

// TestBindAnyWithAdvertiseJoinsAndServes: real `meridian server`
// processes, inside the harness's own network namespace, bind every
// listener on 0.0.0.0 and advertise their own loopback address, as nodes
// in containers do. The joiner serves writes and reads through its API,
// every member is advertised at a dialable address, and after a restart
// advertising a new address (a container's new IP) the cluster uses the
// new one. The namespace is what lets a test bind 0.0.0.0: the host's
// interfaces are never touched.
func TestBindAnyWithAdvertiseJoinsAndServes(t *testing.T) {
	t.Parallel()
	h := startClusterConfig(t, proc.Config{Regions: []string{"us-east", "eu-west", "ap-south"}, NodesPerRegion: 1, BindAny: true})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	nodes, err := h.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joiner := nodes[1] // eu-west-1: joined through the founder's advertised cluster address
	if joiner.APIAddr != "127.0.2.1:7410" {
		t.Fatalf("joiner advertises %s, want 127.0.2.1:7410", joiner.APIAddr)
	}

	// The listener really is the wildcard one: another local address
	// reaches the same API port.
	wild := "127.0.9.9:7410"
	conn, err := grpc.NewClient("passthrough:///"+wild, grpc.WithTransportCredentials(insecure.NewCredentials()), h.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := apiv1.NewKeyManagementClient(conn).ListKeys(ctx, &apiv1.ListKeysRequest{}); err != nil {
		t.Fatalf("the joiner's API on %s (bound to 0.0.0.0): %v", wild, err)
	}

	first := writeAndRead(ctx, t, h, joiner.APIAddr, nil)
	members := membersOf(ctx, t, h, joiner.APIAddr)
	for _, want := range []string{"127.0.1.1:7400", "127.0.2.1:7410", "127.0.3.1:7420"} {
		if !strings.Contains(members, want) {
			t.Errorf("members %s lack advertised %s", members, want)
		}
	}
	if strings.Contains(members, "0.0.0.0") {
		t.Errorf("a bind address leaked into the members: %s", members)
	}

	// Restart the joiner elsewhere: another address and other ports, so
	// nothing answers at the old ones. Nothing in its data dir pins them:
	// the leader learns the new addresses from its gossip and updates
	// Raft and the registration.
	if err := h.RestartAt(ctx, joiner.ID, "127.0.2.9"); err != nil {
		t.Fatal(err)
	}
	moved := "127.0.2.9:7910"
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(membersOf(ctx, t, h, nodes[0].APIAddr), moved) {
		if time.Now().After(deadline) {
			t.Fatalf("the leader never saw %s: %s", moved, membersOf(ctx, t, h, nodes[0].APIAddr))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// It serves again at the new address once the leader replicates to
	// its new Raft address (nothing listens at the old one, and a
	// restarted replica applies its log only as the leader's commit index
	// reaches it): the earlier ciphertext decrypts there, and a write
	// through it reads back there with the write's consistency token.
	for {
		err := decryptAt(ctx, h, moved, first)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the moved node never served the earlier key: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	writeAndRead(ctx, t, h, moved, &first)
}

// decryptAt decrypts old at addr alone.
func decryptAt(ctx context.Context, h *proc.Harness, addr string, old oldData) error {
	cfg := h.ClientConfig("")
	cfg.Addrs, cfg.DisableDiscovery = []string{addr}, true
	cl, err := client.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pt, err := cl.Decrypt(cctx, &apiv1.DecryptRequest{CiphertextBlob: old.ct})
	if err != nil {
		return err
	}
	if string(pt.GetPlaintext()) != old.msg {
		return fmt.Errorf("decrypted %q, want %q", pt.GetPlaintext(), old.msg)
	}
	return nil
}

type oldData struct {
	key, msg string
	ct       []byte
}

// writeAndRead creates a key and encrypts through addr alone (no
// discovery), then decrypts there with the write's consistency token;
// with old it first decrypts an earlier ciphertext there.
func writeAndRead(ctx context.Context, t *testing.T, h *proc.Harness, addr string, old *oldData) oldData {
	t.Helper()
	cfg := h.ClientConfig("")
	cfg.Addrs, cfg.DisableDiscovery = []string{addr}, true
	cl, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatalf("client for %s: %v", addr, err)
	}
	defer cl.Close()
	if old != nil {
		pt, err := cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: old.ct})
		if err != nil || string(pt.GetPlaintext()) != old.msg {
			t.Fatalf("decrypt an old ciphertext at %s: %v", addr, err)
		}
	}
	created, err := cl.CreateKey(ctx, &apiv1.CreateKeyRequest{Description: "via " + addr})
	if err != nil {
		t.Fatalf("create key through %s: %v", addr, err)
	}
	keyID := created.GetKeyMetadata().GetKeyId()
	msg := []byte("through " + addr)
	enc, err := cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: keyID, Plaintext: msg})
	if err != nil {
		t.Fatalf("encrypt through %s: %v", addr, err)
	}
	dec, err := cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
	if err != nil || !bytes.Equal(dec.GetPlaintext(), msg) {
		t.Fatalf("decrypt at %s: %v", addr, err)
	}
	return oldData{key: keyID, msg: string(msg), ct: enc.GetCiphertextBlob()}
}

// membersOf renders addr's member list, one line per member.
func membersOf(ctx context.Context, t *testing.T, h *proc.Harness, addr string) string {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()), h.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := apiv1.NewKeyManagementClient(conn).Members(ctx, &apiv1.MembersRequest{})
	if err != nil {
		t.Fatalf("members at %s: %v", addr, err)
	}
	var b strings.Builder
	for _, m := range resp.GetMembers() {
		b.WriteString(m.String() + "\n")
	}
	return b.String()
}
