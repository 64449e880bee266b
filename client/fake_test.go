package client

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// fakeKMS is a KeyManagement server whose failures the test controls. An
// interceptor sees every call first, so injected failures and request-id
// recording apply to all 33 methods alike.
type fakeKMS struct {
	apiv1.UnimplementedKeyManagementServer

	mu sync.Mutex
	// failUnavailable makes the next N calls fail with Unavailable.
	failUnavailable int
	// failAfterApply makes the next N CreateKey calls create the key and
	// then answer Unavailable: the ambiguous outcome retries must survive.
	failAfterApply int
	// err, when set, is returned by every call.
	err error
	// block makes calls wait until their ctx ends.
	block bool
	// started receives one value per call that reached the interceptor.
	started chan string
	// recordMembers makes Members calls count like any other; otherwise the
	// client's own discovery calls pass by unseen and untouched.
	recordMembers bool

	calls      []string // full method names, in arrival order
	requestIDs []string // request_id of each call ("" for reads)
	keys       map[string]string
	commit     uint64
	commits    []uint64 // commit indexes to hand out, in order; else commit+1
}

func (f *fakeKMS) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	f.mu.Lock()
	skip := methodName(info.FullMethod) == "Members" && !f.recordMembers
	f.mu.Unlock()
	if skip {
		return h(ctx, req)
	}
	id := ""
	if m, ok := req.(proto.Message); ok {
		if fd := m.ProtoReflect().Descriptor().Fields().ByName("request_id"); fd != nil {
			id = m.ProtoReflect().Get(fd).String()
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, info.FullMethod)
	f.requestIDs = append(f.requestIDs, id)
	fail := f.failUnavailable > 0
	if fail {
		f.failUnavailable--
	}
	err, block, started := f.err, f.block, f.started
	f.mu.Unlock()
	_ = grpc.SetHeader(ctx, metadata.Pairs("meridian-node", "fake-1"))
	if started != nil {
		started <- info.FullMethod
	}
	switch {
	case block:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case fail:
		return nil, status.Error(codes.Unavailable, "injected: leader lost")
	case err != nil:
		return nil, err
	}
	return h(ctx, req)
}

func (f *fakeKMS) nextCommit() uint64 {
	if len(f.commits) > 0 {
		c := f.commits[0]
		f.commits = f.commits[1:]
		return c
	}
	f.commit++
	return f.commit
}

func (f *fakeKMS) CreateKey(_ context.Context, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]string{}
	}
	keyID, ok := f.keys[req.GetRequestId()]
	if !ok {
		keyID = "k-" + req.GetRequestId()[:8]
		f.keys[req.GetRequestId()] = keyID
	}
	if f.failAfterApply > 0 {
		f.failAfterApply--
		return nil, status.Error(codes.Unavailable, "injected: leadership lost mid-apply")
	}
	return &apiv1.CreateKeyResponse{
		KeyMetadata: &apiv1.KeyMetadata{KeyId: keyID, Description: req.GetDescription()},
		CommitIndex: f.nextCommit(),
	}, nil
}

func (f *fakeKMS) EnableKey(context.Context, *apiv1.EnableKeyRequest) (*apiv1.WriteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &apiv1.WriteResponse{CommitIndex: f.nextCommit()}, nil
}

func (f *fakeKMS) ListKeys(context.Context, *apiv1.ListKeysRequest) (*apiv1.ListKeysResponse, error) {
	return &apiv1.ListKeysResponse{Keys: []*apiv1.KeyListEntry{{KeyId: "k-1"}}}, nil
}

func (f *fakeKMS) snapshot() (calls, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]string(nil), f.requestIDs...)
}

// startFake serves f on a fresh 127.0.0.1 port until the test ends.
func startFake(t *testing.T, f *fakeKMS) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	apiv1.RegisterKeyManagementServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// newTestClient connects to addrs with fast retries; mod adjusts the config.
func newTestClient(t *testing.T, mod func(*Config), addrs ...string) *Client {
	t.Helper()
	cfg := DefaultConfig(addrs...)
	cfg.Insecure = true
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 5 * time.Millisecond
	cfg.DialTimeout = 5 * time.Second
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

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func methodName(full string) string { return full[strings.LastIndex(full, "/")+1:] }

type tlsConfig = tls.Config
