package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterNodeInfo(reg, "n1", "r1"); err != nil {
		t.Fatal(err)
	}
	var notReady atomic.Pointer[error]
	ready := func(context.Context) error {
		if e := notReady.Load(); e != nil {
			return *e
		}
		return nil
	}
	ms, err := NewMetricsServer(reg, ready, (&logCapture{t: t}).logger())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ms.Serve(lis) }()
	base := "http://" + lis.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `meridian_node_info{node_id="n1",region="r1"} 1`) {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d", code)
	}
	e := errors.New("no raft leader known")
	notReady.Store(&e)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no raft leader") {
		t.Errorf("/readyz when not ready: %d %q", code, body)
	}
	// The process stays alive while not ready.
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz when not ready: %d", code)
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms.Stop(ctx)
	if err := <-served; err != nil {
		t.Errorf("Serve after Stop: %v", err)
	}
}

// A wedged readiness check fails the probe instead of hanging it.
func TestReadyzTimesOut(t *testing.T) {
	t.Parallel()
	ms, err := NewMetricsServer(prometheus.NewRegistry(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ms.Serve(lis) }()
	t.Cleanup(func() { ms.Stop(context.Background()) })
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + lis.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > readyTimeout+3*time.Second {
		t.Errorf("wedged readiness: %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestNewMetricsServerNeedsGatherer(t *testing.T) {
	if _, err := NewMetricsServer(nil, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil gatherer: %v", err)
	}
}
