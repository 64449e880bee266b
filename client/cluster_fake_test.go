package client

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// board is the Members answer every fake node gives, as gossip would make
// it, and the cluster's commit counter.
type board struct {
	mu      sync.Mutex
	members []*apiv1.Member
	commit  uint64
	commits []uint64 // commit indexes to hand out, in order; else commit+1
}

func (b *board) add(m *apiv1.Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.members = append(b.members, m)
}

// update changes the member with id (a copy: answers already sent keep theirs).
func (b *board) update(id string, f func(*apiv1.Member)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.members {
		if m.GetNodeId() == id {
			m = proto.Clone(m).(*apiv1.Member)
			f(m)
			b.members[i] = m
		}
	}
}

func (b *board) nextCommit() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.commits) > 0 {
		c := b.commits[0]
		b.commits = b.commits[1:]
		b.commit = max(b.commit, c)
		return c
	}
	b.commit++
	return b.commit
}

// fakeNode is one KeyManagement server in a region, with an artificial
// delay on every call (health checks included, so probes see it as RTT).
type fakeNode struct {
	apiv1.UnimplementedKeyManagementServer
	id, region, addr string
	board            *board
	srv              *grpc.Server
	health           *health.Server

	mu           sync.Mutex
	delay        time.Duration            // every call
	slow         map[string]time.Duration // extra delay per method
	applied      uint64                   // consistency tokens above this are refused
	noMembers    bool                     // answer Members with Unimplemented (an older server)
	calls        map[string]int
	firstArrival map[string]time.Time
	lastToken    string // token header of the latest KeyManagement call ("" = none)
}

func (n *fakeNode) member() *apiv1.Member {
	return &apiv1.Member{NodeId: n.id, Region: n.region, Zone: n.region + "a", ApiAddr: n.addr,
		Role: apiv1.MemberRole_MEMBER_ROLE_VOTER, Status: apiv1.MemberStatus_MEMBER_STATUS_ALIVE, Healthy: true}
}

func (n *fakeNode) set(f func(n *fakeNode)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

func (n *fakeNode) count(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[method]
}

func (n *fakeNode) token() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastToken
}

func (n *fakeNode) arrival(method string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.firstArrival[method]
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-t.C:
		return nil
	}
}

func (n *fakeNode) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	n.mu.Lock()
	delay := n.delay
	n.mu.Unlock()
	if err := wait(ctx, delay); err != nil {
		return nil, err
	}
	m := methodName(info.FullMethod)
	if !strings.HasPrefix(info.FullMethod, "/meridian.v1.KeyManagement/") || m == "Members" {
		return h(ctx, req)
	}
	tok := ""
	if v := metadata.ValueFromIncomingContext(ctx, ConsistencyTokenHeader); len(v) > 0 {
		tok = v[0]
	}
	n.mu.Lock()
	n.calls[m]++
	if _, ok := n.firstArrival[m]; !ok {
		n.firstArrival[m] = time.Now()
	}
	n.lastToken = tok
	slow, applied := n.slow[m], n.applied
	n.mu.Unlock()
	if err := wait(ctx, slow); err != nil {
		return nil, err
	}
	if tok != "" {
		idx, err := strconv.ParseUint(tok, 10, 64)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad token")
		}
		if idx > applied {
			st, _ := status.New(codes.Unavailable, fmt.Sprintf("node %s has not caught up to consistency token %d (applied %d)", n.id, idx, applied)).
				WithDetails(&apiv1.ErrorInfo{Exception: string(Unavailable)})
			return nil, st.Err()
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("meridian-node", n.id))
	return h(ctx, req)
}

func (n *fakeNode) Members(context.Context, *apiv1.MembersRequest) (*apiv1.MembersResponse, error) {
	n.mu.Lock()
	no := n.noMembers
	n.mu.Unlock()
	if no {
		return nil, status.Error(codes.Unimplemented, "method Members not implemented")
	}
	n.board.mu.Lock()
	defer n.board.mu.Unlock()
	return &apiv1.MembersResponse{Members: append([]*apiv1.Member(nil), n.board.members...), ServedBy: n.id, AppliedIndex: n.board.commit}, nil
}

func (n *fakeNode) Encrypt(_ context.Context, req *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	return &apiv1.EncryptResponse{KeyId: req.GetKeyId(), CiphertextBlob: append([]byte(n.id+":"), req.GetPlaintext()...)}, nil
}

func (n *fakeNode) Decrypt(_ context.Context, req *apiv1.DecryptRequest) (*apiv1.DecryptResponse, error) {
	_, pt, _ := strings.Cut(string(req.GetCiphertextBlob()), ":")
	return &apiv1.DecryptResponse{KeyId: "k-1", Plaintext: []byte(pt)}, nil
}

func (n *fakeNode) CreateKey(_ context.Context, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	return &apiv1.CreateKeyResponse{KeyMetadata: &apiv1.KeyMetadata{KeyId: "k-" + req.GetRequestId()[:8]}, CommitIndex: n.board.nextCommit()}, nil
}

// startNode serves a fake node in region with the given delay, listed on b
// unless unlisted. It stops when the test ends (or earlier via stop).
func startNode(t testing.TB, b *board, id, region string, delay time.Duration, unlisted ...bool) *fakeNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{id: id, region: region, addr: lis.Addr().String(), board: b, delay: delay,
		slow: map[string]time.Duration{}, applied: 1 << 62, calls: map[string]int{}, firstArrival: map[string]time.Time{},
		health: health.NewServer()}
	n.srv = grpc.NewServer(grpc.UnaryInterceptor(n.intercept))
	apiv1.RegisterKeyManagementServer(n.srv, n)
	healthpb.RegisterHealthServer(n.srv, n.health)
	n.health.SetServingStatus(apiv1.KeyManagement_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	go func() { _ = n.srv.Serve(lis) }()
	t.Cleanup(n.stop)
	if len(unlisted) == 0 || !unlisted[0] {
		b.add(n.member())
	}
	return n
}

// stop kills the node: listener and connections closed, in-flight calls cut.
func (n *fakeNode) stop() { n.srv.Stop() }

// newClusterClient connects to seed with fast retries and no background
// timers unless mod sets them.
func newClusterClient(t testing.TB, region string, mod func(*Config), seeds ...string) *Client {
	t.Helper()
	cfg := DefaultConfig(seeds...)
	cfg.Insecure = true
	cfg.Region = region
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 10 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nodeAddrs(c *Client) []string {
	var out []string
	for _, s := range c.Nodes() {
		out = append(out, s.Addr)
	}
	return out
}
