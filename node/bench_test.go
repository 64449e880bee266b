package node_test

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// echoServer answers Encrypt with a response of the size Meridian's has,
// doing no work: the floor that gRPC itself sets on loopback.
type echoServer struct {
	apiv1.UnimplementedKeyManagementServer
	blob []byte
}

func (e *echoServer) Encrypt(_ context.Context, r *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	return &apiv1.EncryptResponse{CiphertextBlob: e.blob, KeyId: r.GetKeyId(), KeyVersion: 1,
		EncryptionAlgorithm: apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT}, nil
}

func startEcho(b *testing.B, blobLen int) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer()
	apiv1.RegisterKeyManagementServer(s, &echoServer{blob: make([]byte, blobLen)})
	go s.Serve(lis)
	b.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dialRaw(b *testing.B, addr string) apiv1.KeyManagementClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return apiv1.NewKeyManagementClient(conn)
}

// BenchmarkEncryptGRPC compares Encrypt of 32 bytes through a real node
// with a bare gRPC echo of the same message sizes, in the same run, at 1
// and 64 concurrent callers. Single-caller runs report p50/p99 latency.
func BenchmarkEncryptGRPC(b *testing.B) {
	c := startCluster(b, 1, nil)
	cl := c.Client(0)
	id := mustCreateKey(b, cl, &apiv1.CreateKeyRequest{}).GetKeyMetadata().GetKeyId()
	req := &apiv1.EncryptRequest{KeyId: id, Plaintext: make([]byte, 32)}
	probe, err := cl.Encrypt(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	targets := map[string]string{
		"meridian": c.Nodes[0].APIAddr(),
		"echo":     startEcho(b, len(probe.GetCiphertextBlob())),
	}
	for _, name := range []string{"echo", "meridian"} {
		api := dialRaw(b, targets[name])
		b.Run(name+"/callers=1", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if _, err := api.Encrypt(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
		b.Run(name+"/callers=64", func(b *testing.B) {
			b.SetParallelism(max(1, 64/maxProcs()))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := api.Encrypt(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCreateKey3Nodes measures replicated CreateKey throughput on a
// 3-node cluster (fsync'd bolt logs) with 64 concurrent writers spread over
// all nodes, so two thirds of the writes are forwarded to the leader.
func BenchmarkCreateKey3Nodes(b *testing.B) {
	c := startCluster(b, 3, nil)
	c.WaitLeader()
	apis := []apiv1.KeyManagementClient{dialRaw(b, c.Nodes[0].APIAddr()), dialRaw(b, c.Nodes[1].APIAddr()), dialRaw(b, c.Nodes[2].APIAddr())}
	var next atomic.Uint64
	b.SetParallelism(max(1, 64/maxProcs()))
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		api := apis[next.Add(1)%3]
		for pb.Next() {
			if _, err := api.CreateKey(context.Background(), &apiv1.CreateKeyRequest{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "keys/s")
}
