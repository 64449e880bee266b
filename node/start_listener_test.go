package node_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
)

// TestFailedStartReleasesTheClusterListener: a start that fails after
// validation (here: its data dir cannot be created) closes the cluster
// listener it was handed, so the port is free for the next attempt.
func TestFailedStartReleasesTheClusterListener(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := localcluster.Config(dir, 0)
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(blocker, "data") // under a regular file
	cfg.ClusterListener = lis
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := node.Start(ctx, cfg); err == nil {
		n.Close()
		t.Fatal("Start created a data dir under a regular file")
	} else if !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("Start: %v, want the data dir's error", err)
	}
	// An open listener would wait for a connection: bound it.
	_ = lis.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	if _, err := lis.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on the handed-in listener after a failed start: %v, want net.ErrClosed", err)
	}
	again, err := net.Listen("tcp", lis.Addr().String())
	if err != nil {
		t.Fatalf("the cluster port is still taken after a failed start: %v", err)
	}
	again.Close()
}
