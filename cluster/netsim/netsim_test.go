package netsim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// echoServer echoes lines until the connection closes.
func echoServer(t *testing.T, s *Sim, region string) string {
	t.Helper()
	l, err := s.Listen("tcp", "127.0.0.1:0", region)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends one byte and waits for its echo.
func roundTrip(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func minRTT(t *testing.T, c net.Conn, n int) time.Duration {
	best := time.Hour
	for range n {
		best = min(best, roundTrip(t, c))
	}
	return best
}

// slack bounds scheduling noise on a loaded 2-core machine under -race.
const slack = 40 * time.Millisecond

func TestLatencyPerRoundTripAndRuntimeChange(t *testing.T) {
	s := New()
	addr := echoServer(t, s, "eu")
	s.SetLatency("us", "eu", 50*time.Millisecond, 0)
	c, err := s.Dial(context.Background(), "tcp", addr, "us")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 50 ms one way: a round trip costs ~100 ms.
	if rtt := minRTT(t, c, 3); rtt < 100*time.Millisecond || rtt > 100*time.Millisecond+slack {
		t.Errorf("rtt at 50ms one-way = %v, want 100ms..%v", rtt, 100*time.Millisecond+slack)
	}
	// Changed at runtime, on the open connection.
	s.SetLatency("us", "eu", 10*time.Millisecond, 0)
	roundTrip(t, c) // data already queued under the old setting drains first
	if rtt := minRTT(t, c, 3); rtt < 20*time.Millisecond || rtt > 20*time.Millisecond+slack {
		t.Errorf("rtt at 10ms one-way = %v, want 20ms..%v", rtt, 20*time.Millisecond+slack)
	}
	// Same region: no delay.
	local, err := s.Dial(context.Background(), "tcp", echoServer(t, s, "us"), "us")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if rtt := minRTT(t, local, 3); rtt > slack {
		t.Errorf("same-region rtt = %v, want < %v", rtt, slack)
	}
}

func TestJitterBoundsAndOrder(t *testing.T) {
	s := New()
	s.SetDefault(20*time.Millisecond, 10*time.Millisecond)
	for range 1000 {
		if d := s.Latency("a", "b").sample(); d < 10*time.Millisecond || d > 30*time.Millisecond {
			t.Fatalf("sample %v outside 10..30ms", d)
		}
	}
	// Jitter never reorders bytes on a connection.
	c, err := s.Dial(context.Background(), "tcp", echoServer(t, s, "b"), "a")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("0123456789abcdefghij")
	for _, b := range msg {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	s := New()
	s.SetDefault(200*time.Millisecond, 0)
	c, err := s.Dial(context.Background(), "tcp", echoServer(t, s, "b"), "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read before the data is due: err = %v, want deadline exceeded", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hi\n" {
		t.Fatalf("after deadline cleared: %q, %v", line, err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v, want net.ErrClosed", err)
	}
}

func TestStreamLayerDelaysRaftTraffic(t *testing.T) {
	s := New()
	s.SetLatency("us", "eu", 30*time.Millisecond, 0)
	eu, err := s.StreamLayer("127.0.0.1:0", "eu")
	if err != nil {
		t.Fatal(err)
	}
	defer eu.Close()
	go func() {
		for {
			c, err := eu.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	us, err := s.StreamLayer("127.0.0.1:0", "us")
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	if r, ok := s.RegionOf(us.Addr().String()); !ok || r != "us" {
		t.Fatalf("stream layer address registered as %q, %v", r, ok)
	}
	c, err := us.Dial(raft.ServerAddress(eu.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rtt := minRTT(t, c, 2); rtt < 60*time.Millisecond || rtt > 60*time.Millisecond+slack {
		t.Errorf("raft stream rtt = %v, want 60ms..%v", rtt, 60*time.Millisecond+slack)
	}
}

func TestResolverFallback(t *testing.T) {
	s := New()
	s.Register("10.0.0.1:1", "us")
	s.SetResolver(func(addr string) (string, bool) { return "eu", addr == "10.0.0.2:1" })
	for addr, want := range map[string]string{"10.0.0.1:1": "us", "10.0.0.2:1": "eu", "10.0.0.3:1": ""} {
		if got, ok := s.RegionOf(addr); ok != (want != "") || (ok && got != want) {
			t.Errorf("RegionOf(%s) = %q, want %q", addr, got, want)
		}
	}
}
