package netsim

import (
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipHost starts a gossip transport for node in region on 127.0.0.1.
func gossipHost(t *testing.T, s *Sim, region, node string) *GossipTransport {
	t.Helper()
	tr, err := s.Host(region, node).GossipTransport("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown() })
	return tr.(*GossipTransport)
}

// send writes one packet from a to b and returns when it was sent.
func send(t *testing.T, a, b *GossipTransport, payload string) time.Time {
	t.Helper()
	sent, err := a.WriteToAddress([]byte(payload), memberlist.Address{Addr: b.Addr()})
	if err != nil {
		t.Fatalf("write %s -> %s: %v", a.Addr(), b.Addr(), err)
	}
	return sent
}

// recv waits up to within for a packet on tr (nil if none came).
func recv(tr *GossipTransport, within time.Duration) *memberlist.Packet {
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(within):
		return nil
	}
}

func TestGossipPacketsTakeTheLatency(t *testing.T) {
	s := New()
	us, eu := gossipHost(t, s, "us", "us-0"), gossipHost(t, s, "eu", "eu-0")
	if n, ok := s.NodeOf(eu.Addr()); !ok || n != "eu-0" {
		t.Fatalf("gossip address not registered: NodeOf = %q, %v", n, ok)
	}
	const oneWay = 60 * time.Millisecond
	s.SetLatency("us", "eu", oneWay, 0)
	// Each packet waits at least the latency; the faster of the two,
	// which a loaded machine's scheduling delay touches least, not much
	// more.
	fastest := time.Hour
	for _, payload := range []string{"ping", "ack"} {
		start := time.Now()
		sent := send(t, us, eu, payload)
		if sent.Sub(start) > slack {
			t.Errorf("WriteToAddress blocked for %v; a packet send returns at once", sent.Sub(start))
		}
		p := recv(eu, 2*time.Second)
		if p == nil {
			t.Fatalf("%s lost without a fault", payload)
		}
		d := p.Timestamp.Sub(sent)
		if d < oneWay {
			t.Errorf("%s took %v, want at least %v", payload, d, oneWay)
		}
		fastest = min(fastest, d)
		if string(p.Buf) != payload || p.From.String() != us.Addr() {
			t.Errorf("got %q from %s, want %q from %s", p.Buf, p.From, payload, us.Addr())
		}
	}
	if fastest > oneWay+slack {
		t.Errorf("the faster packet took %v, want %v..%v", fastest, oneWay, oneWay+slack)
	}
	// Inside a region (no setting) and to addresses the Sim does not know,
	// packets go at once.
	us2 := gossipHost(t, s, "us", "us-1")
	sent := send(t, us, us2, "local")
	if p := recv(us2, time.Second); p == nil || p.Timestamp.Sub(sent) > slack {
		t.Fatalf("same-region packet: %v", p)
	}
	outside, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Shutdown()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(outside.GetAutoBindPort()))
	if _, err := us.WriteTo([]byte("out"), addr); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-outside.PacketCh():
		if string(p.Buf) != "out" {
			t.Fatalf("outside got %q", p.Buf)
		}
	case <-time.After(time.Second):
		t.Fatal("packet to an address outside the Sim was lost")
	}
}

func TestGossipPacketsDroppedAcrossFaults(t *testing.T) {
	s := New()
	us, eu, eu1 := gossipHost(t, s, "us", "us-0"), gossipHost(t, s, "eu", "eu-0"), gossipHost(t, s, "eu", "eu-1")
	const quiet = 80 * time.Millisecond

	// Partition: dropped both ways, not held for later.
	s.Partition("us", "eu")
	send(t, us, eu, "lost-1")
	send(t, eu, us, "lost-2")
	if p := recv(eu, quiet); p != nil {
		t.Fatalf("eu received %q across a partition", p.Buf)
	}
	if p := recv(us, quiet); p != nil {
		t.Fatalf("us received %q across a partition", p.Buf)
	}
	s.HealAll()
	send(t, us, eu, "after-heal")
	if p := recv(eu, time.Second); p == nil || string(p.Buf) != "after-heal" {
		t.Fatalf("after heal eu received %v, want the new packet and nothing held", p)
	}

	// One-way block: us -> eu dropped, eu -> us delivered.
	s.Block("us", "eu")
	send(t, us, eu, "blocked")
	send(t, eu, us, "flows")
	if p := recv(us, time.Second); p == nil || string(p.Buf) != "flows" {
		t.Fatalf("eu -> us under Block(us, eu): %v", p)
	}
	if p := recv(eu, quiet); p != nil {
		t.Fatalf("eu received %q through Block(us, eu)", p.Buf)
	}
	s.HealAll()

	// Isolate cuts a node from its own region too.
	s.Isolate("eu-1")
	send(t, eu, eu1, "to-isolated")
	send(t, eu1, eu, "from-isolated")
	if p := recv(eu1, quiet); p != nil {
		t.Fatalf("isolated node received %q", p.Buf)
	}
	if p := recv(eu, quiet); p != nil {
		t.Fatalf("packet from the isolated node arrived: %q", p.Buf)
	}
	s.Reconnect("eu-1")

	// A fault that starts while a packet is in flight loses it.
	s.SetLatency("us", "eu", 100*time.Millisecond, 0)
	send(t, us, eu, "in-flight")
	s.Partition("us", "eu")
	if p := recv(eu, 200*time.Millisecond); p != nil {
		t.Fatalf("in-flight packet arrived after the partition began: %q", p.Buf)
	}
}

func TestGossipStreamsGoThroughTheSim(t *testing.T) {
	s := New()
	us, eu := gossipHost(t, s, "us", "us-0"), gossipHost(t, s, "eu", "eu-0")
	go func() { // eu echoes every stream until its end
		for c := range eu.StreamCh() {
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	const oneWay = 40 * time.Millisecond
	s.SetLatency("us", "eu", oneWay, 0)
	c, err := us.DialAddressTimeout(memberlist.Address{Addr: eu.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The fastest of several round trips: scheduling delay on a loaded
	// machine only adds, so the minimum is what the Sim imposed.
	if rtt := minRTT(t, c, 5); rtt < 2*oneWay || rtt > 2*oneWay+slack {
		t.Errorf("stream round trip = %v, want %v..%v", rtt, 2*oneWay, 2*oneWay+slack)
	}
	c.Close()

	// Across a partition a dial waits for its timeout, then fails.
	s.Partition("us", "eu")
	start := time.Now()
	_, err = us.DialTimeout(eu.Addr(), 60*time.Millisecond)
	if !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial across a partition: %v, want ErrPartitioned", err)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Fatalf("dial failed after %v, before its timeout", el)
	}

	// Shutdown ends a waiting dial, as a process's exit would.
	done := make(chan error, 1)
	go func() {
		_, err := us.DialTimeout(eu.Addr(), time.Minute)
		done <- err
	}()
	if err := us.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial ended by Shutdown: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("dial still waiting after Shutdown")
	}
	if err := us.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// A packet delayed past Shutdown is dropped, not sent from a closed
	// socket.
	s.HealAll()
	if _, err := us.WriteTo([]byte("late"), eu.Addr()); err != nil {
		t.Fatal(err)
	}
	if p := recv(eu, 150*time.Millisecond); p != nil {
		t.Fatalf("packet from a shut-down transport arrived: %q", p.Buf)
	}
}

func TestGossipTransportBindErrors(t *testing.T) {
	h := New().Host("us", "us-0")
	for _, addr := range []string{"nowhere", "127.0.0.1:http", "127.0.0.1:99999"} {
		if tr, err := h.GossipTransport(addr, nil); err == nil || tr != nil {
			t.Errorf("GossipTransport(%q) = %v, %v; want an error and a nil transport", addr, tr, err)
		}
	}
	// The port is taken: a clear error, not a panic.
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := h.GossipTransport(l.Addr().String(), nil); err == nil {
		t.Errorf("bound a gossip transport on a port in use")
	}
}
