package main

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// fakeOperator is an Operator server with canned answers: RotateDomainKey
// streams progress, then ends with rotateErr.
type fakeOperator struct {
	apiv1.UnimplementedOperatorServer

	progress  []*apiv1.RotateDomainKeyProgress
	rotateErr error
	hsm       *apiv1.HSMStatusResponse
	dk        *apiv1.DomainKeyStatusResponse

	mu       sync.Mutex
	syncFrom []string
}

func (f *fakeOperator) RotateDomainKey(_ *apiv1.RotateDomainKeyRequest, s apiv1.Operator_RotateDomainKeyServer) error {
	for _, p := range f.progress {
		if err := s.Send(p); err != nil {
			return err
		}
	}
	return f.rotateErr
}

func (f *fakeOperator) HSMStatus(context.Context, *apiv1.HSMStatusRequest) (*apiv1.HSMStatusResponse, error) {
	return f.hsm, nil
}

func (f *fakeOperator) DomainKeyStatus(context.Context, *apiv1.DomainKeyStatusRequest) (*apiv1.DomainKeyStatusResponse, error) {
	return f.dk, nil
}

func (f *fakeOperator) SyncDomainKeys(_ context.Context, req *apiv1.SyncDomainKeysRequest) (*apiv1.SyncDomainKeysResponse, error) {
	f.mu.Lock()
	f.syncFrom = append(f.syncFrom, req.GetSourceApiAddr())
	f.mu.Unlock()
	return &apiv1.SyncDomainKeysResponse{NodeId: "n3", ImportedVersions: []uint32{2}, HsmDomainKeyVersions: []uint32{1, 2}}, nil
}

// startFakeOperator serves f on a fresh 127.0.0.1 port until the test ends.
func startFakeOperator(t *testing.T, f *fakeOperator) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	apiv1.RegisterOperatorServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func opCLI(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	return cli(t, "", append(append([]string{"operator"}, args...), "--insecure", "--addr", addr)...)
}
