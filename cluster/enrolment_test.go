package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/clusterpb"
	"github.com/meridiankms/meridian/cluster/clustertest"
	"github.com/meridiankms/meridian/fsm"
)

// fakeExporter stands for a member's HSM (whose real enrolment is tested in
// hsm/): it records the transport keys it was asked to wrap to and answers
// with a bundle naming its node and the key, or with err.
type fakeExporter struct {
	node  string
	mu    sync.Mutex
	calls [][]byte
	err   error
}

func (f *fakeExporter) ExportDomainKeys(_ context.Context, pub []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, bytes.Clone(pub))
	if f.err != nil {
		return nil, f.err
	}
	return bundleFor(f.node, pub), nil
}

func (f *fakeExporter) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeExporter) Calls() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.calls...)
}

// bundleFor is what node's exporter makes for pub: a test can tell both
// which member made a bundle and for exactly which key.
func bundleFor(node string, pub []byte) []byte {
	h := sha256.Sum256(pub)
	return fmt.Appendf(nil, "BUNDLE-MARKER from %s for %x", node, h)
}

// transportKey is a stand-in transport public key; cluster treats it as
// opaque bytes (the HSM parses it). The marker lets the log scan find it.
func transportKey(name string) []byte {
	return fmt.Appendf(nil, "TRANSPORT-KEY-MARKER %s %s", name, strings.Repeat("k", 400))
}

// withExporters gives each cluster node its own fakeExporter.
func withExporters(ex map[string]*fakeExporter) clustertest.Option {
	return func(c *cluster.Config) {
		if e, ok := ex[c.NodeID]; ok {
			c.Enrolment = e
		}
	}
}

func exportersFor(ids ...string) map[string]*fakeExporter {
	ex := map[string]*fakeExporter{}
	for _, id := range ids {
		ex[id] = &fakeExporter{node: id}
	}
	return ex
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startJoiner starts a node that is not yet a member: its own bolt store,
// Raft on real TCP, and a cluster-plane server on its own listener. It is closed
// when the test ends, before the cluster it joined.
func startJoiner(t *testing.T, id string, logger *slog.Logger) *cluster.Node {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := clustertest.FastConfig(cluster.DefaultConfig())
	cfg.NodeID, cfg.DataDir, cfg.APIAddr, cfg.ClusterAddr = id, t.TempDir(), id+".api.invalid:7400", lis.Addr().String()
	cfg.Region, cfg.Zone = "test-1", "test-1a"
	cfg.Logger = logger.With("node", id)
	n, err := cluster.New(ctxFor(t, 10*time.Second), cfg, fsm.New(cfg.Logger))
	if err != nil {
		lis.Close()
		t.Fatalf("start %s: %v", id, err)
	}
	srv := cluster.NewServer(cfg.Logger, nil)
	n.Register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", id, err)
		}
	})
	return n
}

// assertMember reports whether id is in leader's Raft configuration and
// fsm registrations, failing the test if it is in one but not the other
// (once both are settled) or differs from want.
func assertMember(t *testing.T, leader *clustertest.Node, id string, want bool) {
	t.Helper()
	servers, err := leader.Servers(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	inRaft := false
	for _, s := range servers {
		inRaft = inRaft || string(s.ID) == id
	}
	_, registered := leader.FSM.Node(id)
	if inRaft != want || registered != want {
		t.Errorf("%s: in raft %v, registered %v; want both %v (servers %v)", id, inRaft, registered, want, servers)
	}
}

func TestJoinWithEnrolment(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ex := exportersFor("node-0", "node-1")
	c := clustertest.StartCluster(t, 2, withExporters(ex), func(cfg *cluster.Config) {
		cfg.Logger = logger.With("node", cfg.NodeID)
	})
	leader := c.Leader()
	fol := follower(c, leader)
	lex, fex := ex[leader.ID], ex[fol.ID]

	// Through the leader: the bundle is what the leader's exporter made for
	// exactly this joiner's key.
	keyA := transportKey("a")
	ja := startJoiner(t, "joiner-a", logger)
	got, err := ja.JoinWithEnrolment(ctxFor(t, 20*time.Second), []string{leader.ClusterAddr}, keyA)
	if err != nil {
		t.Fatalf("join with enrolment via leader: %v", err)
	}
	if want := bundleFor(leader.ID, keyA); !bytes.Equal(got, want) {
		t.Errorf("bundle = %q, want %q", got, want)
	}
	if calls := lex.Calls(); len(calls) != 1 || !bytes.Equal(calls[0], keyA) {
		t.Errorf("leader exporter calls = %d (%q), want exactly keyA once", len(calls), calls)
	}
	assertMember(t, leader, "joiner-a", true)

	// A retried join is idempotent and exports again.
	got, err = ja.JoinWithEnrolment(ctxFor(t, 20*time.Second), []string{leader.ClusterAddr}, keyA)
	if err != nil || !bytes.Equal(got, bundleFor(leader.ID, keyA)) {
		t.Fatalf("rejoin = %q, %v; want the same bundle", got, err)
	}
	if n := len(lex.Calls()); n != 2 {
		t.Errorf("leader exporter calls after rejoin = %d, want 2", n)
	}

	// Through a follower only: forwarded, and the leader still enrols.
	keyB := transportKey("b")
	jb := startJoiner(t, "joiner-b", logger)
	got, err = jb.JoinWithEnrolment(ctxFor(t, 20*time.Second), []string{fol.ClusterAddr}, keyB)
	if err != nil {
		t.Fatalf("join with enrolment via follower: %v", err)
	}
	if want := bundleFor(leader.ID, keyB); !bytes.Equal(got, want) {
		t.Errorf("forwarded bundle = %q, want %q", got, want)
	}
	if calls := lex.Calls(); len(calls) != 3 || !bytes.Equal(calls[2], keyB) {
		t.Errorf("leader exporter calls = %d, want 3 with keyB last", len(calls))
	}
	if n := len(fex.Calls()); n != 0 {
		t.Errorf("follower exporter called %d times; only the leader exports", n)
	}
	assertMember(t, leader, "joiner-b", true)

	// Without a key, a join is what it always was: no export.
	jc := startJoiner(t, "joiner-c", logger)
	if err := jc.Join(ctxFor(t, 20*time.Second), []string{fol.ClusterAddr}); err != nil {
		t.Fatalf("plain join: %v", err)
	}
	if n := len(lex.Calls()); n != 3 {
		t.Errorf("leader exporter calls after a plain join = %d, want still 3", n)
	}
	assertMember(t, leader, "joiner-c", true)

	// Sizes are logged; the key and the bundle never are.
	out := logs.String()
	if !strings.Contains(out, "exported domain keys") || !strings.Contains(out, "bundle_bytes=") {
		t.Errorf("logs lack the export record; the scan below would prove nothing:\n%s", out)
	}
	for _, secret := range []string{"TRANSPORT-KEY-MARKER", "BUNDLE-MARKER"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %s:\n%s", secret, out)
		}
	}
}

func TestJoinWithEnrolmentRefused(t *testing.T) {
	ex := exportersFor("node-0")
	c := clustertest.StartCluster(t, 1, withExporters(ex))
	leader := c.Leader()
	lex := ex[leader.ID]
	j := startJoiner(t, "joiner", clustertest.TestLogger(t))
	seeds := []string{leader.ClusterAddr}
	key := transportKey("j")

	cases := []struct {
		name      string
		exportErr error
		key       []byte
		timeout   time.Duration
		wantIs    error  // errors.Is target
		wantMsg   string // substring of the error
		wantCalls int    // exporter calls this case adds; -1 = at least 2 (retried)
	}{
		{"exporter refuses the key", fmt.Errorf("hsm says no: %w", cluster.ErrInvalidTransportKey), key,
			20 * time.Second, cluster.ErrInvalidTransportKey, "hsm says no", 1},
		{"exporter fails transiently", errors.New("hsm device error"), key,
			time.Second, context.DeadlineExceeded, "hsm device error", -1},
		{"empty key", nil, nil, 20 * time.Second, cluster.ErrInvalidTransportKey, "0 bytes", 0},
		{"oversized key", nil, make([]byte, 5000), 20 * time.Second, cluster.ErrInvalidTransportKey, "5000 bytes", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lex.setErr(tc.exportErr)
			before := len(lex.Calls())
			start := time.Now()
			bundle, err := j.JoinWithEnrolment(ctxFor(t, tc.timeout), seeds, tc.key)
			if err == nil || bundle != nil {
				t.Fatalf("join = %q, %v; want a refusal", bundle, err)
			}
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q; want errors.Is %v and mentioning %q", err, tc.wantIs, tc.wantMsg)
			}
			calls := len(lex.Calls()) - before
			switch {
			case tc.wantCalls >= 0 && calls != tc.wantCalls:
				t.Errorf("exporter called %d times, want %d", calls, tc.wantCalls)
			case tc.wantCalls < 0 && calls < 2:
				t.Errorf("exporter called %d times, want retries (>= 2)", calls)
			}
			if tc.wantIs != context.DeadlineExceeded && time.Since(start) > 5*time.Second {
				t.Errorf("a permanent refusal took %v; it must not be retried", time.Since(start))
			}
			// The export comes before Raft: a node without the domain
			// keys never becomes a member.
			assertMember(t, leader, "joiner", false)
		})
	}

	// The leader checks the key's size itself, whatever the joiner's build.
	conn, err := grpc.NewClient(leader.ClusterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = clusterpb.NewClusterClient(conn).Join(ctxFor(t, 5*time.Second), &clusterpb.JoinRequest{
		NodeId: "raw", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2", TransportPublicKey: make([]byte, 5000),
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), cluster.ErrInvalidTransportKey.Error()) {
		t.Errorf("raw oversized join: %v; want InvalidArgument naming the transport key", err)
	}

	// Once the exporter works, the same node enrols: the refusals left
	// nothing behind.
	lex.setErr(nil)
	bundle, err := j.JoinWithEnrolment(ctxFor(t, 20*time.Second), seeds, key)
	if err != nil || !bytes.Equal(bundle, bundleFor(leader.ID, key)) {
		t.Fatalf("join after recovery = %q, %v", bundle, err)
	}
	assertMember(t, leader, "joiner", true)
}

func TestJoinWithEnrolmentNoExporter(t *testing.T) {
	c := clustertest.StartCluster(t, 1)
	leader := c.Leader()
	j := startJoiner(t, "joiner", clustertest.TestLogger(t))
	ctx := ctxFor(t, 20*time.Second)
	_, err := j.JoinWithEnrolment(ctx, []string{leader.ClusterAddr}, transportKey("j"))
	if !errors.Is(err, cluster.ErrEnrolmentUnavailable) || ctx.Err() != nil {
		t.Fatalf("error %v (ctx %v); want ErrEnrolmentUnavailable at once", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "no domain-key exporter configured") {
		t.Errorf("error %q does not say why", err)
	}
	assertMember(t, leader, "joiner", false)
	// The same cluster still takes joins that need no domain key.
	if err := j.Join(ctx, []string{leader.ClusterAddr}); err != nil {
		t.Fatalf("plain join: %v", err)
	}
	assertMember(t, leader, "joiner", true)
}

// oldLeader answers joins as a build before enrolment would: it accepts
// and sends no bundle (it does not know the transport key field).
type oldLeader struct {
	clusterpb.UnimplementedClusterServer
}

func (oldLeader) Join(context.Context, *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	return &clusterpb.JoinResponse{Index: 7, LeaderId: "old"}, nil
}

func TestJoinWithEnrolmentNoBundle(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	clusterpb.RegisterClusterServer(srv, oldLeader{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	j := startJoiner(t, "joiner", clustertest.TestLogger(t))
	_, err = j.JoinWithEnrolment(ctxFor(t, 20*time.Second), []string{lis.Addr().String()}, transportKey("j"))
	if !errors.Is(err, cluster.ErrNoDomainKeyBundle) {
		t.Fatalf("error %v; want ErrNoDomainKeyBundle", err)
	}
}
