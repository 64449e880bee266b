package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// fakeReplica is the replicated state every fake node reads: how many key
// versions each DK version wraps (what the fsm would say).
type fakeReplica struct {
	mu     sync.Mutex
	counts map[uint32]int
}

func (r *fakeReplica) snapshot() map[uint32]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps(r.counts)
}

func maps(m map[uint32]int) map[uint32]int {
	out := make(map[uint32]int, len(m))
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// fakeOperator is one node's keystore and HSM, and its cluster plane. Its
// "HSM" holds DK version numbers; a bundle is the transport key followed
// by the versions, so an import checks that the bundle was made for this
// node's transport key, as a real unwrap would. Calls on other members go
// straight to their fakes, as the cluster plane would carry them: a
// stopped member is unreachable, and a member's failure comes back as the
// status its own mapping made (StatusOf, as the node wiring does).
type fakeOperator struct {
	replica *fakeReplica
	cluster *opCluster
	self    string

	mu         sync.Mutex
	held       []uint32
	pub        []byte
	calls      []string
	importErr  error
	exportErr  error
	rotateErr  error
	rewrapGate chan struct{} // when set, Rewrap waits for it to close
	rewrapIn   chan struct{} // closed when Rewrap starts (with rewrapGate)
}

var _ OperatorBackend = (*fakeOperator)(nil)

func (f *fakeOperator) record(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
}

func (f *fakeOperator) called(op string) int {
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

func (f *fakeOperator) versions() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.held)
}

func (f *fakeOperator) DomainKeyStatus(ctx context.Context) (keystore.DomainKeyStatus, error) {
	f.record("DomainKeyStatus")
	held := f.versions()
	st := keystore.DomainKeyStatus{HSMVersions: held, Versions: f.replica.snapshot()}
	if len(held) > 0 {
		st.Current = held[len(held)-1]
	}
	for dk, n := range st.Versions {
		st.Total += n
		if dk != st.Current {
			st.Pending += n
		}
	}
	return st, nil
}

func (f *fakeOperator) HSMStatus(ctx context.Context) (HSMStatus, error) {
	f.record("HSMStatus")
	held := f.versions()
	return HSMStatus{Backend: "fake", Detail: "in memory", Healthy: len(held) > 0, DomainKeyVersions: held,
		Mechanisms: []HSMMechanism{{Name: "CKM_AES_KEY_GEN", Present: true, Required: true, Use: "domain key generation"}, {Name: "CKM_ECDSA", Use: "ECDSA"}}}, nil
}

func (f *fakeOperator) RotateHSMDomainKey(ctx context.Context) (uint32, error) {
	f.record("RotateHSMDomainKey")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rotateErr != nil {
		return 0, f.rotateErr
	}
	next := f.held[len(f.held)-1] + 1
	f.held = append(f.held, next)
	return next, nil
}

func (f *fakeOperator) RewrapDomainKey(ctx context.Context, progress func(done, total int)) (uint32, error) {
	f.record("RewrapDomainKey")
	f.mu.Lock()
	gate, in := f.rewrapGate, f.rewrapIn
	f.mu.Unlock()
	if gate != nil {
		close(in)
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	held := f.versions()
	cur := held[len(held)-1]
	r := f.replica
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for dk, n := range r.counts {
		if dk != cur {
			total += n
		}
	}
	progress(0, total)
	// Batches of two, like keystore's RewrapBatch.
	for done := 0; done < total; {
		moved := 0
		for dk := range r.counts {
			for r.counts[dk] > 0 && dk != cur && moved < 2 {
				r.counts[dk]--
				r.counts[cur]++
				moved++
			}
		}
		done += moved
		progress(done, total)
	}
	return cur, nil
}

func (f *fakeOperator) MemberDomainKeyVersions(ctx context.Context, id string) ([]uint32, error) {
	f.record("MemberDomainKeyVersions")
	nd, err := f.cluster.reach(id)
	if err != nil {
		return nil, err
	}
	return nd.backend.versions(), nil
}

func (f *fakeOperator) SyncMember(ctx context.Context, id, sourceID string) (DomainKeySync, error) {
	f.record("SyncMember")
	nd, err := f.cluster.reach(id)
	if err != nil {
		return DomainKeySync{}, err
	}
	return nd.backend.SyncDomainKeysFrom(ctx, sourceID)
}

// SyncDomainKeysFrom does what cluster.Node's does: ask the source which
// versions it holds, and only if some are missing make a transport key,
// have the source export to it and import the bundle.
func (f *fakeOperator) SyncDomainKeysFrom(ctx context.Context, sourceID string) (DomainKeySync, error) {
	f.record("SyncDomainKeysFrom")
	src, err := f.cluster.reach(sourceID)
	if err != nil {
		return DomainKeySync{}, err
	}
	before := f.versions()
	missing := missingFrom(src.backend.versions(), before)
	if len(missing) == 0 {
		return DomainKeySync{Versions: before}, nil
	}
	pub, _ := f.TransportPublicKey(ctx)
	bundle, err := src.backend.ExportDomainKeys(ctx, pub)
	if err != nil {
		st := status.Convert(StatusOf(ctx, nil, "export", err)).Proto()
		st.Message = fmt.Sprintf("sync domain keys: export from source %s (%s): %s", src.id, src.addr, st.GetMessage())
		return DomainKeySync{}, status.FromProto(st).Err()
	}
	if err := f.ImportDomainKeys(ctx, bundle); err != nil {
		return DomainKeySync{}, StatusOf(ctx, nil, "import", err)
	}
	after := f.versions()
	return DomainKeySync{Imported: missingFrom(after, before), Versions: after}, nil
}

func missingFrom(a, b []uint32) []uint32 {
	var out []uint32
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func (f *fakeOperator) TransportPublicKey(ctx context.Context) ([]byte, error) {
	f.record("TransportPublicKey")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pub == nil {
		f.pub = make([]byte, 16)
		_, _ = rand.Read(f.pub)
	}
	return slices.Clone(f.pub), nil
}

func (f *fakeOperator) ExportDomainKeys(ctx context.Context, pub []byte) ([]byte, error) {
	f.record("ExportDomainKeys")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exportErr != nil {
		return nil, f.exportErr
	}
	vs := make([]string, len(f.held))
	for i, v := range f.held {
		vs[i] = strconv.Itoa(int(v))
	}
	return append(append(slices.Clone(pub), '|'), strings.Join(vs, ",")...), nil
}

func (f *fakeOperator) ImportDomainKeys(ctx context.Context, bundle []byte) error {
	f.record("ImportDomainKeys")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.importErr != nil {
		return f.importErr
	}
	if f.pub == nil || !bytes.HasPrefix(bundle, append(slices.Clone(f.pub), '|')) {
		return fmt.Errorf("bundle not made for this HSM's transport key: %w", keystore.ErrValidation)
	}
	for _, s := range strings.Split(string(bundle[len(f.pub)+1:]), ",") {
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("bad bundle: %w", keystore.ErrValidation)
		}
		if !slices.Contains(f.held, uint32(v)) {
			f.held = append(f.held, uint32(v))
		}
	}
	slices.Sort(f.held)
	f.pub = nil // the pair is used up, as on a real HSM
	return nil
}

// opNode is one server of an operator test cluster.
type opNode struct {
	id      string
	addr    string
	backend *fakeOperator
	srv     *Server
	reg     *prometheus.Registry
	metrics *Metrics
	stop    func()
	down    atomic.Bool // stopped: unreachable over the "cluster plane"
}

// opCluster is n operator servers over real TCP sharing a membership list
// and a replica.
type opCluster struct {
	t       *testing.T
	replica *fakeReplica
	mu      sync.Mutex
	members []Member
	nodes   []*opNode
}

func newOpCluster(t *testing.T, n int, counts map[uint32]int) *opCluster {
	t.Helper()
	c := &opCluster{t: t, replica: &fakeReplica{counts: counts}}
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("n%d", i+1)
		nd := &opNode{id: id, addr: lis.Addr().String(), backend: &fakeOperator{replica: c.replica, cluster: c, self: id, held: []uint32{1}}}
		c.members = append(c.members, Member{NodeID: id, APIAddr: nd.addr, Status: StatusAlive, Role: RoleVoter})
		c.start(nd, lis)
		c.nodes = append(c.nodes, nd)
	}
	return c
}

// reach is the fake cluster plane: member id, or the status a call to a
// member that is gone (or never was) fails with.
func (c *opCluster) reach(id string) (*opNode, error) {
	for _, nd := range c.nodes {
		if nd.id == id {
			if nd.down.Load() {
				return nil, status.Errorf(codes.Unavailable, "dial member %s: connection refused", id)
			}
			return nd, nil
		}
	}
	return nil, status.Errorf(codes.InvalidArgument, "node %q is not a member of this cluster", id)
}

func (c *opCluster) view(self string) func(context.Context) (MembersView, error) {
	return func(context.Context) (MembersView, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return MembersView{Members: slices.Clone(c.members), ServedBy: self}, nil
	}
}

func (c *opCluster) start(nd *opNode, lis net.Listener) {
	t := c.t
	cfg := DefaultConfig()
	cfg.ListenAddr = lis.Addr().String()
	cfg.GracefulStopTimeout = 2 * time.Second
	nd.reg = prometheus.NewRegistry()
	var err error
	if nd.metrics, err = NewMetrics(nd.reg); err != nil {
		t.Fatal(err)
	}
	logs := &logCapture{t: t}
	nd.srv, err = NewServer(cfg, newFakeStore(), WithLogger(logs.logger().With("node", nd.id)), WithMetrics(nd.metrics),
		WithNodeID(nd.id), WithMembership(MembershipFunc(c.view(nd.id))), WithOperator(nd.backend))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- nd.srv.Serve(lis) }()
	var once sync.Once
	nd.stop = func() {
		once.Do(func() {
			nd.down.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			nd.srv.Stop(ctx)
			<-served
		})
	}
	t.Cleanup(nd.stop)
}

func (c *opCluster) setStatus(id string, st MemberStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.members {
		if c.members[i].NodeID == id {
			c.members[i].Status = st
		}
	}
}

// client connects to node i's Operator service.
func (c *opCluster) client(i int) apiv1.OperatorClient {
	return operatorClient(c.t, c.nodes[i].addr)
}

func operatorClient(t *testing.T, addr string) apiv1.OperatorClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return apiv1.NewOperatorClient(conn)
}

// rotate runs RotateDomainKey on node i to the end and returns every
// progress message and the final error.
func (c *opCluster) rotate(ctx context.Context, i int) ([]*apiv1.RotateDomainKeyProgress, error) {
	stream, err := c.client(i).RotateDomainKey(ctx, &apiv1.RotateDomainKeyRequest{})
	if err != nil {
		return nil, err
	}
	var out []*apiv1.RotateDomainKeyProgress
	for {
		p, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, p)
	}
}
