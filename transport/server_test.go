package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/testwait"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := map[string]func(*Config){
		"no listen address":     func(c *Config) { c.ListenAddr = "" },
		"listen without port":   func(c *Config) { c.ListenAddr = "localhost" },
		"bad metrics address":   func(c *Config) { c.MetricsListenAddr = "nope" },
		"recv limit too small":  func(c *Config) { c.MaxRecvMsgSize = 1024 },
		"recv limit too large":  func(c *Config) { c.MaxRecvMsgSize = 1 << 30 },
		"send limit zero":       func(c *Config) { c.MaxSendMsgSize = 0 },
		"keepalive min time 0":  func(c *Config) { c.KeepaliveMinTime = 0 },
		"keepalive timeout < 0": func(c *Config) { c.KeepaliveTimeout = -time.Second },
		"graceful stop 0":       func(c *Config) { c.GracefulStopTimeout = 0 },
	}
	for name, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", name, err)
		}
	}
	c := DefaultConfig()
	c.MetricsListenAddr = ""
	if err := c.Validate(); err != nil {
		t.Errorf("metrics disabled: %v", err)
	}
	if _, err := NewServer(DefaultConfig(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewServer(nil store) = %v, want ErrInvalidConfig", err)
	}
}

// gRPC refuses an oversized request before unmarshalling it, so the store
// never sees it.
func TestOversizedRequestRefused(t *testing.T) {
	h := newHarness(t)
	big := bytes.Repeat([]byte{'x'}, 2<<20)
	_, err := h.client.Encrypt(testCtx(t), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: big})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("got %v, want ResourceExhausted", err)
	}
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
	// The connection survives for the next, valid, call.
	if _, err := h.client.Encrypt(testCtx(t), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("ok")}); err != nil {
		t.Errorf("valid call after oversized one: %v", err)
	}
}

// The caller's deadline reaches the store; when it passes the store's
// context ends and the call fails promptly.
func TestDeadlinePropagates(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(f *fakeStore) { f.block = true })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	clientDeadline, _ := ctx.Deadline()
	start := time.Now()
	_, err := h.client.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("call took %v; the deadline was not honoured", time.Since(start))
	}
	h.store.mu.Lock()
	storeDeadline := h.store.deadline
	h.store.mu.Unlock()
	if d := storeDeadline.Sub(clientDeadline); storeDeadline.IsZero() || d < -time.Second || d > time.Second {
		t.Errorf("store deadline %v, client deadline %v", storeDeadline, clientDeadline)
	}
	// Server side the call ends by its own timer or by the client's cancel,
	// whichever lands first; either way it is counted once.
	timedOut := h.metrics.requests.WithLabelValues("Encrypt", "DependencyTimeoutException")
	canceled := h.metrics.requests.WithLabelValues("Encrypt", "RequestCanceledException")
	testwait.Eventually(t, 5*time.Second, "the timed-out call to be counted", func() bool { return counterValue(timedOut)+counterValue(canceled) == 1 })
}

// A call whose deadline passed before it reached the handler is refused
// without touching the store.
func TestRejectExpired(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	called := false
	_, err := rejectExpired(ctx, nil, &grpc.UnaryServerInfo{FullMethod: kmPrefix + "Encrypt"},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	if called || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("called=%v err=%v; want refused with DeadlineExceeded", called, err)
	}
	st := toStatus(ctx, discardLogger(), "Encrypt", err).GRPCStatus()
	if st.Code() != codes.DeadlineExceeded || ExceptionFromStatus(st) != "DependencyTimeoutException" {
		t.Errorf("mapped to %v", st)
	}
}

func TestPanicRecovered(t *testing.T) {
	for _, p := range []any{"SECRET-PLAINTEXT in a panic string", errors.New("SECRET-PLAINTEXT in an error")} {
		h := newHarness(t)
		h.store.set(func(f *fakeStore) { f.panicVal = p })
		_, err := h.client.Encrypt(testCtx(t), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("SECRET-PLAINTEXT")})
		st, _ := status.FromError(err)
		if st.Code() != codes.Internal || ExceptionFromStatus(st) != "KMSInternalException" ||
			!strings.Contains(st.Message(), "internal error") || strings.Contains(st.Message(), "SECRET") {
			t.Fatalf("got %v, want a generic Internal", err)
		}
		logs := h.logs.String()
		if !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "goroutine") {
			t.Errorf("panic not logged with its stack")
		}
		if strings.Contains(logs, "SECRET-PLAINTEXT") {
			t.Errorf("panic log holds request data")
		}
		if got := counterValue(h.metrics.requests.WithLabelValues("Encrypt", "KMSInternalException")); got != 1 {
			t.Errorf("panic counted %v times", got)
		}
		h.store.set(func(f *fakeStore) { f.panicVal = nil })
		if _, err := h.client.Encrypt(testCtx(t), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")}); err != nil {
			t.Errorf("server unusable after a panic: %v", err)
		}
	}
	// A runtime error is safe to describe: its text comes from the runtime.
	var m map[string]int
	func() {
		defer func() {
			if got := describePanic(recover()); !strings.Contains(got, "assignment to entry in nil map") {
				t.Errorf("describePanic(runtime error) = %q", got)
			}
		}()
		m["x"] = 1
	}()
}

func TestRequestID(t *testing.T) {
	h := newHarness(t)
	get := func(ctx context.Context) string {
		t.Helper()
		var header metadata.MD
		if _, err := h.client.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: "k-1"}, grpc.Header(&header)); err != nil {
			t.Fatal(err)
		}
		v := header.Get(RequestIDHeader)
		if len(v) != 1 {
			t.Fatalf("header %v", header)
		}
		return v[0]
	}
	if got := get(metadata.AppendToOutgoingContext(testCtx(t), RequestIDHeader, "client-chosen-1")); got != "client-chosen-1" {
		t.Errorf("client id not kept: %q", got)
	}
	a, b := get(testCtx(t)), get(testCtx(t))
	if len(a) != 16 || a == b {
		t.Errorf("generated ids %q, %q", a, b)
	}
	for _, bad := range []string{"has space", strings.Repeat("x", maxRequestIDLen+1)} {
		if got := get(metadata.AppendToOutgoingContext(testCtx(t), RequestIDHeader, bad)); got == bad || len(got) != 16 {
			t.Errorf("invalid id %q accepted as %q", bad, got)
		}
	}
}

// The access log names the operation, key, outcome and duration, and never
// holds plaintext, ciphertext or key material.
func TestAccessLog(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	if _, err := h.client.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: "alias/payments", Plaintext: []byte("TOP-SECRET-PLAINTEXT")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.GenerateDataKey(ctx, &apiv1.GenerateDataKeyRequest{KeyId: "k-1", NumberOfBytes: 32}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.ReEncrypt(ctx, &apiv1.ReEncryptRequest{CiphertextBlob: []byte("OLD-CIPHERTEXT"), DestinationKeyId: "k-2"}); err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, want := range []string{`"operation":"Encrypt"`, `"key_id":"alias/payments"`, `"outcome":"ok"`, `"duration":`,
		`"operation":"ReEncrypt"`, `"destination_key_id":"k-2"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s", want)
		}
	}
	for _, secret := range []string{"TOP-SECRET-PLAINTEXT", "CIPHERTEXT-MARKER", "DATA-KEY-PLAINTEXT", "OLD-CIPHERTEXT"} {
		if strings.Contains(logs, secret) {
			t.Errorf("access log holds %s", secret)
		}
	}
}

func TestHealthService(t *testing.T) {
	h := newHarness(t)
	hc := healthpb.NewHealthClient(h.conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return resp.GetStatus()
	}
	km := apiv1.KeyManagement_ServiceDesc.ServiceName
	for _, svc := range []string{"", km} {
		if got := check(svc); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("%q before SetServing: %v", svc, got)
		}
	}
	h.srv.SetServing(true)
	for _, svc := range []string{"", km} {
		if got := check(svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%q after SetServing(true): %v", svc, got)
		}
	}
	h.srv.SetServing(false)
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after SetServing(false): %v", got)
	}
	// Health calls are not KeyManagement calls: they keep their own codes.
	if _, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: %v, want NotFound", err)
	}
}

func TestReflection(t *testing.T) {
	h := newHarness(t)
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	list := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	services := map[string]bool{}
	for _, s := range list.GetListServicesResponse().GetService() {
		services[s.GetName()] = true
	}
	for _, want := range []string{"meridian.v1.KeyManagement", "grpc.health.v1.Health"} {
		if !services[want] {
			t.Errorf("reflection does not list %s (got %v)", want, services)
		}
	}
	sym := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "meridian.v1.KeyManagement"}})
	if len(sym.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("no descriptor for meridian.v1.KeyManagement: %v", sym)
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("stream end: %v", err)
	}
}

// Stop waits for in-flight calls up to GracefulStopTimeout, then cuts them.
func TestStopCutsStuckCalls(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.GracefulStopTimeout = 100 * time.Millisecond })
	entered := make(chan struct{})
	h.store.set(func(f *fakeStore) { f.block, f.entered = true, entered })
	callErr := make(chan error, 1)
	go func() {
		_, err := h.client.Encrypt(testCtx(t), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")})
		callErr <- err
	}()
	<-entered
	start := time.Now()
	h.srv.Stop(context.Background())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if err := <-callErr; err == nil {
		t.Error("stuck call succeeded")
	}
	if err := <-h.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	h.served <- nil // for the harness cleanup, which stops again
}
