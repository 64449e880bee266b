package transport

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// logCapture sends the server's logs to t.Log and keeps a copy to search.
type logCapture struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logCapture) logger() *slog.Logger { return l.loggerAt(slog.LevelDebug) }

func (l *logCapture) loggerAt(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: level}))
}

type harness struct {
	srv     *Server
	store   *fakeStore
	members *fakeMembership
	waiter  *fakeWaiter
	reg     *prometheus.Registry
	metrics *Metrics
	logs    *logCapture
	conn    *grpc.ClientConn
	client  apiv1.KeyManagementClient
	served  chan error
}

// harnessAppliedIndex is where the harness's fake fsm starts.
const harnessAppliedIndex = 100

// newHarness serves a fake store, membership and applied-index waiter over
// real TCP on 127.0.0.1 and connects a client to it; everything is torn
// down when the test ends.
func newHarness(t testing.TB, mutate ...func(*Config)) *harness {
	t.Helper()
	return startHarness(t, slog.LevelDebug, nil, mutate...)
}

// newHarnessWith is newHarness with extra server options, applied after the
// harness's own so they override them.
func newHarnessWith(t testing.TB, opts ...Option) *harness {
	t.Helper()
	return startHarness(t, slog.LevelDebug, opts)
}

func startHarness(t testing.TB, level slog.Level, extra []Option, mutate ...func(*Config)) *harness {
	t.Helper()
	h := &harness{store: newFakeStore(), reg: prometheus.NewRegistry(), logs: &logCapture{t: t}}
	h.members = newFakeMembership(h.store)
	h.waiter = newFakeWaiter(harnessAppliedIndex)
	var err error
	if h.metrics, err = NewMetrics(h.reg); err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.GracefulStopTimeout = 2 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	opts := append([]Option{WithLogger(h.logs.loggerAt(level)), WithMetrics(h.metrics),
		WithMembership(h.members), WithConsistency(h.waiter, 0), WithNodeID("node-t")}, extra...)
	if h.srv, err = NewServer(cfg, h.store, opts...); err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h.served = make(chan error, 1)
	go func() { h.served <- h.srv.Serve(lis) }()
	h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	h.client = apiv1.NewKeyManagementClient(h.conn)
	t.Cleanup(func() {
		_ = h.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.srv.Stop(ctx)
		if err := <-h.served; err != nil {
			t.Errorf("Serve returned %v after Stop", err)
		}
	})
	return h
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
