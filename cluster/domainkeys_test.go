package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/cluster/clustertest"
)

// fakeHolder is a member's HSM as the domain-key peer calls see it: DK
// version numbers; a bundle is the transport key, "|", then the versions,
// so an import checks it was made for this HSM's transport key.
type fakeHolder struct {
	mu        sync.Mutex
	held      []uint32
	pub       string
	calls     []string
	exportErr error
	importErr error
	panics    bool
}

func (f *fakeHolder) record(op string) {
	f.calls = append(f.calls, op)
}

func (f *fakeHolder) called(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (f *fakeHolder) versions() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.held)
}

func (f *fakeHolder) set(fn func(*fakeHolder)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeHolder) DomainKeyVersions(context.Context) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Versions")
	if f.panics {
		panic(errors.New("holder bug"))
	}
	return slices.Clone(f.held), nil
}

func (f *fakeHolder) TransportPublicKey(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("TransportPublicKey")
	f.pub = fmt.Sprintf("pub-%d", len(f.calls))
	return []byte(f.pub), nil
}

func (f *fakeHolder) ExportDomainKeys(_ context.Context, pub []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Export")
	if f.exportErr != nil {
		return nil, f.exportErr
	}
	vs := make([]string, len(f.held))
	for i, v := range f.held {
		vs[i] = strconv.Itoa(int(v))
	}
	return []byte(string(pub) + "|" + strings.Join(vs, ",")), nil
}

func (f *fakeHolder) ImportDomainKeys(_ context.Context, bundle []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Import")
	if f.importErr != nil {
		return f.importErr
	}
	pub, list, ok := strings.Cut(string(bundle), "|")
	if !ok || pub != f.pub {
		return status.Error(codes.InvalidArgument, "bundle not made for this HSM's transport key")
	}
	for _, s := range strings.Split(list, ",") {
		v, _ := strconv.Atoi(s)
		if !slices.Contains(f.held, uint32(v)) {
			f.held = append(f.held, uint32(v))
		}
	}
	slices.Sort(f.held)
	return nil
}

// TestDomainKeyPeerCalls: the domain-key peer calls of rotation and sync
// run over the cluster plane between real in-process nodes: a sync imports
// only what is missing, refuses bad sources, passes a member's own status
// on, hides a holder's internal error, and the client API (which these
// nodes do not even have) is never involved.
func TestDomainKeyPeerCalls(t *testing.T) {
	holders := map[string]*fakeHolder{
		"node-0": {held: []uint32{1, 2}},
		"node-1": {held: []uint32{1}},
		"node-2": {held: []uint32{1}},
	}
	c := clustertest.StartCluster(t, 3, func(cfg *cluster.Config) {
		cfg.DomainKeys = holders[cfg.NodeID]
	})
	n0, n1, n2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	ctx := ctxFor(t, 20*time.Second)

	got, err := n1.PeerDomainKeyVersions(ctx, "node-0")
	if err != nil || !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("node-1 asks node-0's versions: %v, %v", got, err)
	}

	// node-0 (a rotation's leader) asks node-1 to sync from it.
	res, err := n0.SyncPeerDomainKeys(ctx, "node-1", "node-0")
	if err != nil || res.NodeID != "node-1" || !slices.Equal(res.Imported, []uint32{2}) || !slices.Equal(res.Versions, []uint32{1, 2}) {
		t.Fatalf("sync node-1 from node-0: %+v, %v", res, err)
	}
	if !slices.Equal(holders["node-1"].versions(), []uint32{1, 2}) || holders["node-0"].called("Export") != 1 {
		t.Fatalf("node-1 holds %v after one export", holders["node-1"].versions())
	}
	// Holding everything, a second sync makes no transport key.
	if res, err = n1.SyncDomainKeysFrom(ctx, "node-0"); err != nil || len(res.Imported) != 0 {
		t.Fatalf("second sync: %+v, %v", res, err)
	}
	if n := holders["node-1"].called("TransportPublicKey"); n != 1 {
		t.Fatalf("TransportPublicKey called %d times, want 1", n)
	}

	for _, tc := range []struct {
		name, src string
		code      codes.Code
		says      string
	}{
		{"itself", "node-2", codes.InvalidArgument, "this node itself"},
		{"not a member", "node-9", codes.InvalidArgument, "not a member"},
	} {
		_, err := n2.SyncDomainKeysFrom(ctx, tc.src)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.says)
		}
	}

	// The source's refusal reaches the caller with its code, named.
	holders["node-0"].set(func(f *fakeHolder) {
		f.exportErr = status.Error(codes.FailedPrecondition, "this backend cannot enrol")
	})
	_, err = n0.SyncPeerDomainKeys(ctx, "node-2", "node-0")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "export from source node-0") ||
		!strings.Contains(err.Error(), "cannot enrol") {
		t.Fatalf("export refused: %v", err)
	}
	// A holder error without a status is internal: its text stays here.
	holders["node-0"].set(func(f *fakeHolder) { f.exportErr = errors.New("CKR_DEVICE_ERROR") })
	_, err = n2.SyncDomainKeysFrom(ctx, "node-0")
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "CKR_DEVICE_ERROR") {
		t.Fatalf("internal export failure: %v", err)
	}
	holders["node-0"].set(func(f *fakeHolder) { f.exportErr = nil })

	// The cluster plane's Export checks the key's size itself, and a
	// panicking holder answers Internal without taking the node down.
	conn, err := grpc.NewClient(n0.ClusterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dk := clusterpb.NewDomainKeysClient(conn)
	for _, size := range []int{0, 5000} {
		_, err := dk.Export(ctx, &clusterpb.ExportDomainKeysRequest{TransportPublicKey: make([]byte, size)})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("export to a %d-byte key: %v, want InvalidArgument", size, err)
		}
	}
	holders["node-0"].set(func(f *fakeHolder) { f.panics = true })
	if _, err := dk.Versions(ctx, &clusterpb.DomainKeyVersionsRequest{}); status.Code(err) != codes.Internal || strings.Contains(err.Error(), "holder bug") {
		t.Fatalf("panicking holder: %v, want Internal without the panic value", err)
	}
	holders["node-0"].set(func(f *fakeHolder) { f.panics = false })
	if got, err := n2.PeerDomainKeyVersions(ctx, "node-0"); err != nil || len(got) != 2 {
		t.Fatalf("node-0 after a panic: %v, %v", got, err)
	}
}

// TestDomainKeysWithoutHolder: a node built without a holder refuses the
// peer calls with FailedPrecondition, it does not crash or hang.
func TestDomainKeysWithoutHolder(t *testing.T) {
	c := clustertest.StartCluster(t, 2)
	_, err := c.Nodes[1].PeerDomainKeyVersions(ctxFor(t, 10*time.Second), "node-0")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), cluster.ErrNoDomainKeyHolder.Error()) {
		t.Fatalf("versions of a node without a holder: %v", err)
	}
}
