package netsim

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// sink is a server that records what it receives and answers each byte
// with the same byte, so a test can tell the two directions apart.
type sink struct {
	addr string
	got  chan byte
	errs chan error // the server side's read error when a connection ends
}

func startSink(t *testing.T, h *Host) *sink {
	t.Helper()
	l, err := h.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &sink{addr: l.Addr().String(), got: make(chan byte, 64), errs: make(chan error, 8)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						s.errs <- err
						return
					}
					s.got <- b[0]
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func dial(t *testing.T, h *Host, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, h, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectNothing checks that nothing arrives within d.
func (s *sink) expectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case b := <-s.got:
		t.Fatalf("server received %q across a cut", b)
	case <-time.After(d):
	}
}

func (s *sink) expect(t *testing.T, want byte) {
	t.Helper()
	select {
	case b := <-s.got:
		if b != want {
			t.Fatalf("server received %q, want %q", b, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("server did not receive %q", want)
	}
}

func readByte(c net.Conn, within time.Duration) (byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	b := make([]byte, 1)
	_, err := c.Read(b)
	return b[0], err
}

func TestPartitionHoldsThenResets(t *testing.T) {
	s := New()
	srv := startSink(t, s.Host("eu", "eu-0"))
	c := dial(t, s.Host("us", "us-0"), srv.addr)
	if _, err := c.Write([]byte{'a'}); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, 'a')
	if b, err := readByte(c, time.Second); err != nil || b != 'a' {
		t.Fatalf("echo before the partition: %q, %v", b, err)
	}

	s.Partition("eu", "us")
	if !s.Cut("us", "eu") || !s.Cut("eu", "us") || s.Cut("us", "ap") {
		t.Fatal("Cut does not reflect the partition")
	}
	if _, err := c.Write([]byte{'b'}); err != nil {
		t.Fatalf("a write is buffered, not refused, during a partition: %v", err)
	}
	srv.expectNothing(t, 100*time.Millisecond)
	if _, err := readByte(c, 50*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read across the partition: %v, want deadline exceeded", err)
	}

	// ResetOnHeal: both ends see a reset, the held byte is lost.
	s.HealAll()
	if _, err := readByte(c, time.Second); !errors.Is(err, ErrReset) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after heal: %v, want ErrReset (ECONNRESET)", err)
	}
	if _, err := c.Write([]byte{'c'}); !errors.Is(err, ErrReset) {
		t.Fatalf("write after heal: %v, want ErrReset", err)
	}
	select {
	case err := <-srv.errs:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server side saw %v, want ECONNRESET", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("server side did not see the reset")
	}
	srv.expectNothing(t, 20*time.Millisecond)

	// A new connection works at once.
	c2 := dial(t, s.Host("us", "us-0"), srv.addr)
	if _, err := c2.Write([]byte{'d'}); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, 'd')
}

func TestResumeOnHealDeliversHeldDataInOrder(t *testing.T) {
	s := New()
	s.SetHealPolicy(ResumeOnHeal)
	srv := startSink(t, s.Host("eu", ""))
	c := dial(t, s.Host("us", ""), srv.addr)
	s.Partition("us", "eu")
	if _, err := c.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	srv.expectNothing(t, 50*time.Millisecond)
	s.Heal("eu", "us")
	for _, want := range []byte("xyz") {
		srv.expect(t, want)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "xyz" {
		t.Fatalf("echo after heal = %q, %v", got, err)
	}
}

func TestDialAcrossPartition(t *testing.T) {
	s := New()
	srv := startSink(t, s.Host("eu", ""))
	us := s.Host("us", "")
	s.Partition("us", "eu")

	// Default: waits until the dial's own deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := us.Dial(ctx, "tcp", srv.addr)
	if !errors.Is(err, ErrPartitioned) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want ErrPartitioned and the context's deadline", err)
	}
	if el := time.Since(start); el < 80*time.Millisecond {
		t.Fatalf("dial failed after %v, before its deadline", el)
	}

	// A dial timeout fails sooner, as a rejecting firewall would.
	s.SetDialTimeout(30 * time.Millisecond)
	start = time.Now()
	_, err = us.Dial(context.Background(), "tcp", srv.addr)
	if !errors.Is(err, ErrPartitioned) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial with timeout: %v", err)
	}
	if el := time.Since(start); el < 30*time.Millisecond || el > 30*time.Millisecond+slack {
		t.Fatalf("dial with 30ms timeout failed after %v", el)
	}

	// A waiting dial goes through when the partition heals, like a
	// retransmitted SYN.
	s.SetDialTimeout(0)
	done := make(chan error, 1)
	go func() {
		c, err := us.Dial(context.Background(), "tcp", srv.addr)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("dial returned %v while partitioned", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Heal("us", "eu")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dial after heal: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("dial still waiting after heal")
	}
}

func TestBlockIsOneWay(t *testing.T) {
	s := New()
	us, eu := s.Host("us", "us-0"), s.Host("eu", "eu-0")
	usSrv, euSrv := startSink(t, us), startSink(t, eu)
	open := dial(t, us, euSrv.addr) // us -> eu, opened before the block
	s.Block("us", "eu")
	if !s.Cut("us", "eu") || s.Cut("eu", "us") {
		t.Fatal("Cut does not reflect a one-way block")
	}

	// us cannot dial eu.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := us.Dial(ctx, "tcp", euSrv.addr); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial us -> eu: %v, want ErrPartitioned", err)
	}
	// eu dials us; its bytes arrive, us's replies are held.
	back := dial(t, eu, usSrv.addr)
	if _, err := back.Write([]byte{'e'}); err != nil {
		t.Fatal(err)
	}
	usSrv.expect(t, 'e')
	if _, err := readByte(back, 80*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reply us -> eu: %v, want held", err)
	}
	// On the connection us opened: what us writes is held.
	if _, err := open.Write([]byte{'u'}); err != nil {
		t.Fatal(err)
	}
	euSrv.expectNothing(t, 80*time.Millisecond)

	s.HealAll()
	for _, c := range []net.Conn{open, back} {
		if _, err := readByte(c, time.Second); !errors.Is(err, ErrReset) {
			t.Fatalf("held connection after heal: %v, want ErrReset", err)
		}
	}
}

func TestIsolateNode(t *testing.T) {
	s := New()
	a0, a1, b0 := s.Host("a", "a-0"), s.Host("a", "a-1"), s.Host("b", "b-0")
	srvA0, srvA1, srvB0 := startSink(t, a0), startSink(t, a1), startSink(t, b0)
	if n, ok := s.NodeOf(srvA1.addr); !ok || n != "a-1" {
		t.Fatalf("NodeOf = %q, %v", n, ok)
	}
	s.Isolate("a-1")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	for _, tc := range []struct {
		from *Host
		addr string
	}{{a0, srvA1.addr}, {a1, srvA0.addr}, {a1, srvB0.addr}, {b0, srvA1.addr}, {s.Host("b", ""), srvA1.addr}} {
		if _, err := tc.from.Dial(ctx, "tcp", tc.addr); !errors.Is(err, ErrPartitioned) {
			t.Errorf("dial %s -> %s with a-1 isolated: %v, want ErrPartitioned", tc.from, tc.addr, err)
		}
	}
	// Everyone else, and a-1 to itself, still connect.
	for _, tc := range []struct {
		from *Host
		addr string
	}{{a0, srvB0.addr}, {b0, srvA0.addr}, {a1, srvA1.addr}} {
		c := dial(t, tc.from, tc.addr)
		if _, err := c.Write([]byte{'k'}); err != nil {
			t.Fatal(err)
		}
		if b, err := readByte(c, time.Second); err != nil || b != 'k' {
			t.Errorf("%s -> %s: echo %q, %v", tc.from, tc.addr, b, err)
		}
	}
	s.Reconnect("a-1")
	dial(t, a0, srvA1.addr)
}

func TestWriteDeadlineWhenHeldDataFillsTheQueue(t *testing.T) {
	s := New()
	srv := startSink(t, s.Host("eu", ""))
	c := dial(t, s.Host("us", ""), srv.addr)
	s.Partition("us", "eu")
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	var err error
	for i := 0; i <= queueLen+1 && err == nil; i++ {
		_, err = c.Write([]byte{'w'})
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write into a full held queue: %v, want deadline exceeded", err)
	}
}
