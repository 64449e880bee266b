package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// RaftTLS runs Raft's transport over mutual TLS. cluster imports no
// identity code (DESIGN.md), so the wiring hands in the two configurations
// its TLS source makes: Server must require and verify a node certificate
// of the cluster (identity's ClusterPlane policy), Client must present
// this node's certificate and verify the peer as a node.
type RaftTLS struct {
	// Server configures accepted Raft connections.
	Server *tls.Config
	// Client configures dialed Raft connections.
	Client *tls.Config
}

func (t RaftTLS) on() bool { return t.Server != nil || t.Client != nil }

func (t RaftTLS) validate() error {
	if t.on() && (t.Server == nil || t.Client == nil) {
		return errors.New("raft TLS needs both a server and a client configuration")
	}
	return nil
}

// raftHandshakeTimeout bounds a Raft TLS handshake, accepted or dialed. A
// peer that stalls its handshake must not hold a goroutine for long; an
// honest one finishes in a round trip or two, WAN included.
const raftHandshakeTimeout = 10 * time.Second

// tcpStreamLayer is raft's TCP stream layer with an advertised address:
// raft.NewTCPTransport builds its own internally, with no way to wrap it
// in TLS, so with TLS on the node listens here and wraps this.
type tcpStreamLayer struct {
	net.Listener
	advertise net.Addr
}

var _ raft.StreamLayer = (*tcpStreamLayer)(nil)

// newTCPStreamLayer listens on bind; advertise ("" for the bound
// address) is what raft records as this node's address, so it must be an
// IP others can dial (raft refuses an unspecified one, and so does this).
func newTCPStreamLayer(bind, advertise string) (*tcpStreamLayer, error) {
	var adv *net.TCPAddr
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			return nil, fmt.Errorf("resolve raft advertise address %q: %w", advertise, err)
		}
		adv = a
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", bind, err)
	}
	if adv == nil {
		adv = l.Addr().(*net.TCPAddr)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		l.Close()
		return nil, fmt.Errorf("raft address %s is not advertisable: set an advertise address", adv)
	}
	return &tcpStreamLayer{Listener: l, advertise: adv}, nil
}

func (t *tcpStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", string(address))
}

// Addr is the advertised address: raft's NetworkTransport takes its local
// address from here.
func (t *tcpStreamLayer) Addr() net.Addr { return t.advertise }

// tlsStreamLayer wraps a stream layer (TCP, or netsim's in tests) in TLS:
// every accepted connection is a TLS server, every dialed one a TLS
// client, with the wiring's policies deciding who passes.
type tlsStreamLayer struct {
	inner          raft.StreamLayer
	server, client *tls.Config
	log            *slog.Logger
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

func newTLSStreamLayer(inner raft.StreamLayer, t RaftTLS, log *slog.Logger) *tlsStreamLayer {
	return &tlsStreamLayer{inner: inner, server: t.Server, client: t.Client, log: log}
}

// Accept returns the next connection without handshaking: raft's accept
// loop is one goroutine, and a peer stalling its handshake there would
// hold up every other peer's connection. The handshake runs, bounded, on
// the connection's first read or write, in raft's goroutine for that
// connection.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.inner.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.server), log: l.log}, nil
}

func (l *tlsStreamLayer) Close() error   { return l.inner.Close() }
func (l *tlsStreamLayer) Addr() net.Addr { return l.inner.Addr() }

// Dial connects and handshakes within timeout, so raft learns at once that
// a peer refused this node (or is no node of ours) instead of at its
// first RPC.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	start := time.Now()
	c, err := l.inner.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	left := min(max(timeout-time.Since(start), time.Second), raftHandshakeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()
	tc := tls.Client(c, l.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// serverConn is an accepted Raft connection that handshakes on first use.
type serverConn struct {
	*tls.Conn
	log  *slog.Logger
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), raftHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			// Logged here, once, with the reason (no certificate, another
			// CA, not a node); raft is then told the connection ended
			// (io.EOF), which it treats as a peer going away rather than
			// logging a second, vaguer "failed to decode" error.
			c.log.Warn("refused a raft connection", "remote", c.RemoteAddr().String(), "err", err)
			c.Conn.Close()
			c.err = io.EOF
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
