package inproc

import (
	"errors"
	"io"
	"net"
	"sync"
)

// gate is a TCP proxy in front of one of a node's gRPC listeners (each
// node has two: its client API and its cluster plane); the node
// advertises the gates' addresses, so clients and other nodes reach the
// node only through them. It exists because a process inside the test binary
// cannot be stopped: a frozen gate holds every byte (and every new
// connection) until thawed, as a SIGSTOPped process's sockets do, and a
// downed gate cuts every connection at once, as a SIGKILL does, before
// the node's graceful Close begins.
type gate struct {
	lis net.Listener

	mu      sync.Mutex
	backend string // the node's real listener address
	frozen  bool
	down    bool
	open    chan struct{} // closed while not frozen
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

func newGate(backend string) (*gate, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gate{lis: lis, backend: backend, open: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(g.open)
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

// Addr implements localcluster.Front.
func (g *gate) Addr() string { return g.lis.Addr().String() }

func (g *gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.lis.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			c.Close()
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serve(c)
		}()
	}
}

// track registers c unless the gate is down or closed.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down || g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *gate) untrack(cs ...net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		delete(g.conns, c)
		c.Close()
	}
}

// wait blocks while the gate is frozen; false once the conn must end.
func (g *gate) wait() bool {
	g.mu.Lock()
	open, down := g.open, g.down || g.closed
	g.mu.Unlock()
	if down {
		return false
	}
	<-open
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down && !g.closed
}

func (g *gate) serve(c net.Conn) {
	if !g.wait() {
		g.untrack(c)
		return
	}
	g.mu.Lock()
	backend := g.backend
	g.mu.Unlock()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		g.untrack(c) // the node is not listening: like a refused connect
		return
	}
	if !g.track(b) {
		b.Close()
		g.untrack(c)
		return
	}
	done := make(chan struct{}, 2)
	go func() { g.pipe(b, c); done <- struct{}{} }()
	go func() { g.pipe(c, b); done <- struct{}{} }()
	<-done
	g.untrack(c, b)
	<-done
}

// pipe copies src to dst, holding each chunk while the gate is frozen.
func (g *gate) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !g.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// freeze holds all traffic until thaw.
func (g *gate) freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.frozen {
		g.frozen, g.open = true, make(chan struct{})
	}
}

func (g *gate) thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen {
		g.frozen = false
		close(g.open)
	}
}

// setDown cuts every connection and refuses new ones (true), or lets
// connections through again (false).
func (g *gate) setDown(down bool) {
	g.mu.Lock()
	g.down = down
	var cut []net.Conn
	if down {
		if g.frozen { // wake the held pipes so they see the gate down
			close(g.open)
			g.open = make(chan struct{})
		}
		for c := range g.conns {
			cut = append(cut, c)
		}
	}
	g.mu.Unlock()
	g.untrack(cut...)
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	if g.frozen {
		g.frozen = false
		close(g.open)
	}
	var cut []net.Conn
	for c := range g.conns {
		cut = append(cut, c)
	}
	g.mu.Unlock()
	g.lis.Close()
	g.untrack(cut...)
	g.wg.Wait()
}

// SetBackend points the gate at the node's new listener address
// (localcluster.Front).
func (g *gate) SetBackend(addr string) {
	g.mu.Lock()
	g.backend = addr
	g.mu.Unlock()
}
