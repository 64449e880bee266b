package cluster

import (
	"strings"

	"github.com/hashicorp/raft"
)

// Raft and memberlist log a failed exchange with a peer as an error,
// whatever the cause. When the cause is a deliberate stop, that reads like
// a crash (a demo's Ctrl-C printed dozens of "use of closed network
// connection" errors), so two causes are logged at debug instead:
//
//   - this node is closing (Close, or BeginClose from a caller stopping
//     several nodes together): its own listeners and connections are what
//     broke the exchange;
//   - the peer the line names announced by gossip that it is leaving
//     (Meta.Leaving, set before it stops).
//
// Only the messages below qualify, all about reaching peers; anything
// else (a disk, a snapshot, the fsm) keeps its level, closing or not.

// peerMessages are raft's and raft-net's messages about exchanges with
// peers (prefixes), and the log argument naming the peer, if any.
var peerMessages = []struct{ prefix, peerArg string }{
	{"failed to heartbeat to", "peer"},
	{"failed to appendEntries to", "peer"},
	{"failed to pipeline appendEntries", "peer"},
	{"failed to start pipeline replication to", "peer"},
	{"failed to send snapshot to", "peer"},
	{"failed to install snapshot", "peer"},
	{"failed to make requestVote RPC", "target"},
	{"failed to contact", "server-id"}, // the leader lease: one peer, or the quorum
	{"failed to accept connection", ""},
	{"failed to decode incoming command", ""},
	{"failed to flush response", ""},
	{"heartbeat timeout reached, starting election", ""},
	{"Election timeout reached, restarting election", ""},
}

// memberlistPeerMessages are memberlist's (after its "[ERR] " prefix).
var memberlistPeerMessages = []string{
	"memberlist: Push/Pull with",
	"memberlist: Failed to send",
	"memberlist: Failed fallback TCP ping",
	"memberlist: Error accepting TCP connection",
	"memberlist: Error reading UDP packet",
	"memberlist: failed to receive",
	"memberlist: Failed to receive",
	"memberlist: Failed to read remote state",
	"memberlist: Failed to push local state",
	"memberlist: Failed to forward ack",
}

// BeginClose tells the node it is about to close, before Close runs: from
// now on failures to reach its peers are expected and logged at debug.
// Callers that stop several in-process nodes together (the demo) call it
// on all of them first, so no node reports the others' departure as an
// error. Close implies it.
func (n *Node) BeginClose() { n.closing.Store(true) }

// quietRaft reports whether a raft warning or error is an expected effect
// of a deliberate stop (see above).
func (n *Node) quietRaft(msg string, args []any) bool {
	for _, m := range peerMessages {
		if !strings.HasPrefix(msg, m.prefix) {
			continue
		}
		if n.closing.Load() {
			return true
		}
		id := n.peerID(argValue(args, m.peerArg))
		return id != "" && n.peerLeaving(id)
	}
	return false
}

// quietMemberlist is quietRaft for memberlist's lines: only this node's
// own closing counts (its lines name peers by gossip name, loosely).
func (n *Node) quietMemberlist(line string) bool {
	if !n.closing.Load() {
		return false
	}
	for _, p := range memberlistPeerMessages {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// argValue finds key's value in hclog's alternating key/value args.
func argValue(args []any, key string) any {
	if key == "" {
		return nil
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1]
		}
	}
	return nil
}

// peerID turns the peer argument of a raft line into a node id: raft
// names a peer by Server, ServerID or (heartbeats) ServerAddress.
func (n *Node) peerID(v any) string {
	switch p := v.(type) {
	case raft.Server:
		return string(p.ID)
	case *raft.Server:
		if p != nil {
			return string(p.ID)
		}
	case raft.ServerID:
		return string(p)
	case raft.ServerAddress:
		return n.idForRaftAddr(string(p))
	}
	return ""
}

// idForRaftAddr finds the gossip peer advertising a Raft address.
func (n *Node) idForRaftAddr(addr string) string {
	if n.gossip == nil {
		return ""
	}
	n.gossip.mu.Lock()
	defer n.gossip.mu.Unlock()
	for id, p := range n.gossip.peers {
		if p.meta.RaftAddr == addr {
			return id
		}
	}
	return ""
}

// peerLeaving reports whether gossip says node id is leaving or has left:
// it set Leaving before stopping (a shutdown or a restart).
func (n *Node) peerLeaving(id string) bool {
	if n.gossip == nil {
		return false
	}
	n.gossip.mu.Lock()
	defer n.gossip.mu.Unlock()
	p, ok := n.gossip.peers[id]
	return ok && (p.meta.Leaving || p.status == StatusLeft)
}
