package identity

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcServer serves the health service over creds on 127.0.0.1 and
// records the Principal FromPeer gives each call, as the transport's
// interceptor will.
type grpcServer struct {
	addr string
	mu   sync.Mutex
	seen []Principal
}

func startGRPC(t *testing.T, s *Source, plane Plane) *grpcServer {
	t.Helper()
	creds, err := s.ServerCredentials(plane)
	if err != nil {
		t.Fatal(err)
	}
	gs := &grpcServer{}
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, err := FromPeer(ctx)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			gs.mu.Lock()
			gs.seen = append(gs.seen, p)
			gs.mu.Unlock()
			ctx = NewContext(ctx, p)
			if got, ok := FromContext(ctx); !ok || got != p {
				return nil, status.Error(codes.Internal, "principal lost in context")
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs.addr = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })
	return gs
}

func (gs *grpcServer) count() int {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return len(gs.seen)
}

func (gs *grpcServer) last() Principal {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.seen[len(gs.seen)-1]
}

// check makes one RPC from a dialer built over s with policy p.
func check(t *testing.T, gs *grpcServer, s *Source, p ClientPolicy) error {
	t.Helper()
	creds, err := s.ClientCredentials(p)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(gs.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestGRPCFromPeer(t *testing.T) {
	ca := newCA(t, "ca")
	nodeCert, nodeKey := ca.issue(t, nodeSpec("n1", "eu-west-1"))
	server, _ := newSource(t, nodeCert, nodeKey, ca.pem)
	api := startGRPC(t, server, ClientAPI)
	cluster := startGRPC(t, server, ClusterPlane)

	anon, _ := newSource(t, nil, nil, ca.pem, func(c *Config) { c.TrustDomain = testTD })
	if err := check(t, api, anon, ClientPolicy{Plane: ClientAPI, NodeID: "n1"}); err != nil {
		t.Fatalf("anonymous call: %v", err)
	}
	if p := api.last(); !p.IsAnonymous() {
		t.Fatalf("anonymous caller seen as %v", p)
	}

	c, k := ca.issue(t, clientSpec("alice"))
	alice, _ := newSource(t, c, k, ca.pem)
	if err := check(t, api, alice, ClientPolicy{Plane: ClientAPI}); err != nil {
		t.Fatalf("client call: %v", err)
	}
	if p, want := api.last(), (mustIdentity(t, alice)); p != want || p.Kind != KindClient || p.Name != "alice" {
		t.Fatalf("client seen as %v, want %v", p, want)
	}

	// The cluster plane: a node passes, a client posing as one does not.
	c, k = ca.issue(t, nodeSpec("n2", "us-east-1"))
	n2, _ := newSource(t, c, k, ca.pem)
	if err := check(t, cluster, n2, ClientPolicy{Plane: ClusterPlane, NodeID: "n1"}); err != nil {
		t.Fatalf("node call: %v", err)
	}
	if p := cluster.last(); p.Kind != KindNode || p.Name != "n2" || p.Region != "us-east-1" {
		t.Fatalf("node seen as %v", p)
	}
	calls := cluster.count()
	// alice cannot build a cluster-plane dialer, so she tries the API one.
	// The refusal reaches her as the server's alert or, when the server
	// has already closed, as a broken connection: either way Unavailable.
	err := check(t, cluster, alice, ClientPolicy{Plane: ClientAPI})
	if status.Code(err) != codes.Unavailable || cluster.count() != calls {
		t.Fatalf("client on the cluster plane: %v (calls %d -> %d), want Unavailable and no call", err, calls, cluster.count())
	}
	// A dialer checks whom it reached: n1 answering a dial meant for n7 is
	// refused by the dialer.
	err = check(t, cluster, n2, ClientPolicy{Plane: ClusterPlane, NodeID: "n7"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "dialed node n7") {
		t.Fatalf("dial to n7 answered by n1: %v", err)
	}
}

func mustIdentity(t *testing.T, s *Source) Principal {
	t.Helper()
	p, ok := s.Identity()
	if !ok {
		t.Fatal("Source has no identity")
	}
	return p
}
