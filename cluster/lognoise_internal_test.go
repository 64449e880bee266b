package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// quietRaft demotes only messages about reaching peers, and only while
// this node closes or when the peer named has announced it is leaving.
func TestQuietRaft(t *testing.T) {
	n := &Node{gossip: &gossip{peers: map[string]*peer{
		"n2": {meta: Meta{ID: "n2", RaftAddr: "127.0.0.1:2", Leaving: true}},
		"n3": {meta: Meta{ID: "n3", RaftAddr: "127.0.0.1:3"}},
		"n4": {meta: Meta{ID: "n4", RaftAddr: "127.0.0.1:4"}, status: StatusLeft},
	}}}
	closedErr := &net.OpError{Op: "accept", Err: net.ErrClosed}
	cases := []struct {
		name    string
		closing bool
		msg     string
		args    []any
		quiet   bool
	}{
		{"heartbeat to a leaving peer, by address", false, "failed to heartbeat to",
			[]any{"peer", raft.ServerAddress("127.0.0.1:2"), "error", errors.New("EOF")}, true},
		{"heartbeat to a live peer", false, "failed to heartbeat to",
			[]any{"peer", raft.ServerAddress("127.0.0.1:3"), "error", errors.New("EOF")}, false},
		{"append to a peer that left", false, "failed to appendEntries to",
			[]any{"peer", raft.Server{ID: "n4", Address: "127.0.0.1:4"}, "error", errors.New("refused")}, true},
		{"lease contact with a leaving peer", false, "failed to contact", []any{"server-id", raft.ServerID("n2")}, true},
		{"lost quorum is news", false, "failed to contact quorum of nodes, stepping down", nil, false},
		{"accept error of a running node", false, "failed to accept connection", []any{"error", closedErr}, false},
		{"accept error while closing", true, "failed to accept connection", []any{"error", closedErr}, true},
		{"vote request while closing", true, "failed to make requestVote RPC",
			[]any{"target", raft.Server{ID: "n3"}, "error", errors.New("EOF")}, true},
		{"a disk error while closing is still an error", true, "failed to append to logs", []any{"error", errors.New("disk full")}, false},
		{"snapshot trouble while closing is still an error", true, "failed to make snapshot directly", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n.closing.Store(tc.closing)
			if got := n.quietRaft(tc.msg, tc.args); got != tc.quiet {
				t.Fatalf("quietRaft = %v, want %v", got, tc.quiet)
			}
		})
	}
}

// The hclog adapter logs what quiet picks at debug, and nothing else.
func TestHclogQuietLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHclog(l, "raft", func(msg string, _ []any) bool { return msg == "expected" }).Named("net")
	h.Error("expected", "error", "x")
	h.Error("real")
	out := buf.String()
	if !strings.Contains(out, `level=DEBUG msg=expected`) || !strings.Contains(out, `level=ERROR msg=real`) {
		t.Fatalf("log:\n%s", out)
	}

	buf.Reset()
	closing := &Node{}
	closing.closing.Store(true)
	ml := memberlistLog{l: l, quiet: closing.quietMemberlist}
	ml.Write([]byte("[ERR] memberlist: Push/Pull with n3 failed: use of closed network connection\n"))
	ml.Write([]byte("[ERR] Failed to shutdown transport: boom\n"))
	out = buf.String()
	if !strings.Contains(out, `level=DEBUG msg="memberlist: Push/Pull`) || !strings.Contains(out, `level=ERROR msg="Failed to shutdown transport`) {
		t.Fatalf("log:\n%s", out)
	}
}
