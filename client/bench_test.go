package client

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/fakekms"
)

// BenchmarkEncrypt compares a data-plane call through the nearest-node
// client (ranking, consistency token, attempt timeout, failover bookkeeping)
// with the generated stub calling the same loopback node directly. It
// reports p50 and p99 per call besides ns/op.
func BenchmarkEncrypt(b *testing.B) {
	brd := &fakekms.Cluster{}
	near := startNode(b, brd, "near", "eu-west", 0)
	startNode(b, brd, "far", "us-east", 20*time.Millisecond)
	req := &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: make([]byte, 32)}
	ctx := context.Background()

	b.Run("direct", func(b *testing.B) {
		conn, err := grpc.NewClient(near.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		api := apiv1.NewKeyManagementClient(conn)
		measure(b, func() error {
			_, err := api.Encrypt(ctx, req)
			return err
		})
	})
	b.Run("direct-deadline-token", func(b *testing.B) {
		conn, err := grpc.NewClient(near.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		api := apiv1.NewKeyManagementClient(conn)
		measure(b, func() error {
			ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, ConsistencyTokenHeader, "42"), 2*time.Second)
			defer cancel()
			_, err := api.Encrypt(ctx, req)
			return err
		})
	})
	b.Run("nearest-bare", func(b *testing.B) {
		c := newClusterClient(b, "", func(c *Config) { c.CallTimeout, c.AttemptTimeout = 0, 0 }, near.Addr())
		measure(b, func() error {
			_, err := c.Encrypt(ctx, req)
			return err
		})
	})
	b.Run("nearest", func(b *testing.B) {
		c := newClusterClient(b, "", nil, near.Addr())
		c.observeCommit(42) // every call carries a consistency token
		measure(b, func() error {
			_, err := c.Encrypt(ctx, req)
			return err
		})
		if c.Addr() != near.Addr() {
			b.Fatalf("served by %s, not the nearest", c.Addr())
		}
	})
}

func measure(b *testing.B, call func() error) {
	for range 200 { // warm the connection and the server
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
