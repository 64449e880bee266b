package transport

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// echoServer is a bare KeyManagement with no interceptors: the baseline the
// transport's own overhead is measured against.
type echoServer struct {
	apiv1.UnimplementedKeyManagementServer
}

func (echoServer) Encrypt(_ context.Context, r *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	return &apiv1.EncryptResponse{CiphertextBlob: r.GetPlaintext(), KeyId: r.GetKeyId(), KeyVersion: 1}, nil
}

func benchEncrypt(b *testing.B, client apiv1.KeyManagementClient, parallelism int) {
	req := &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: make([]byte, 32)}
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Encrypt(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEncrypt compares the full transport (interceptors, metrics,
// conversion; fake store) with the bare echo on loopback. -cpu=1 makes
// parallelism the number of concurrent callers.
func BenchmarkEncrypt(b *testing.B) {
	echo := grpc.NewServer()
	apiv1.RegisterKeyManagementServer(echo, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = echo.Serve(lis) }()
	defer echo.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	echoClient := apiv1.NewKeyManagementClient(conn)

	// Info, as in production: the Debug access log is off.
	h := startHarness(b, slog.LevelInfo, nil)
	for _, par := range []int{1, 64} {
		b.Run("echo/callers="+strconv.Itoa(par), func(b *testing.B) { benchEncrypt(b, echoClient, par) })
		b.Run("meridian/callers="+strconv.Itoa(par), func(b *testing.B) { benchEncrypt(b, h.client, par) })
	}
}
