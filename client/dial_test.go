package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/internal/fakekms"
)

// An address that answers HTTP/1.1 (a node's metrics port, say) is named
// as such, not reported as a node that does not listen.
func TestNewNamesAnHTTPEndpoint(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("# metrics\n")) })}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })

	cfg := DefaultConfig(lis.Addr().String())
	cfg.Insecure = true
	cfg.DialTimeout = 5 * time.Second
	_, err = New(context.Background(), cfg)
	if !errors.Is(err, ErrNoReachableNode) || !errors.Is(err, ErrNotGRPC) || !IsNotGRPC(err) {
		t.Fatalf("err = %v, want ErrNoReachableNode wrapping ErrNotGRPC", err)
	}
	if !strings.Contains(err.Error(), "dial "+lis.Addr().String()+": this is an HTTP endpoint (metrics?), not the gRPC API") {
		t.Fatalf("err = %v", err)
	}
}

// A refused connection says so, with gRPC's reason.
func TestNewSaysWhyADialFailed(t *testing.T) {
	addr := fakekms.ClosedAddr(t)
	cfg := DefaultConfig(addr)
	cfg.Insecure = true
	cfg.DialTimeout = 5 * time.Second
	_, err := New(context.Background(), cfg)
	want := "dial " + addr + ": connection failed (is a node listening there?): dial tcp " + addr + ": connect: connection refused"
	if err == nil || !strings.Contains(err.Error(), want) || IsNotGRPC(err) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
}
