package fakekms

import (
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Cluster is what the fake nodes of one test share, as gossip and Raft
// would make it shared: the member list every node's Members answers, the
// commit index writes advance, and the ids CreateKey hands out. The zero
// value is an empty cluster; the first node started in it is the leader.
type Cluster struct {
	mu      sync.Mutex
	members []*apiv1.Member
	commit  uint64
	queued  []uint64
	keys    int
}

// Update changes the member with id. Members are replaced, not modified,
// so answers already sent keep what they said.
func (c *Cluster) Update(id string, f func(*apiv1.Member)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.GetNodeId() == id {
			m = proto.Clone(m).(*apiv1.Member)
			f(m)
			c.members[i] = m
		}
	}
}

// QueueCommits makes the next writes answer these commit indexes in the
// order given, which may be out of order, as answers from different nodes
// arrive; then counting resumes above the highest.
func (c *Cluster) QueueCommits(idx ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queued = append(c.queued, idx...)
}

// Commit is the highest commit index a write has answered.
func (c *Cluster) Commit() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commit
}

// Keys is how many keys CreateKey has made: retries of one request make one.
func (c *Cluster) Keys() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys
}

func (c *Cluster) add(m *apiv1.Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.Leader = len(c.members) == 0
	c.members = append(c.members, m)
}

func (c *Cluster) nextCommit() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queued) > 0 {
		idx := c.queued[0]
		c.queued = c.queued[1:]
		c.commit = max(c.commit, idx)
		return idx
	}
	c.commit++
	return c.commit
}

func (c *Cluster) newKeyID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys++
	return "k-" + strconv.Itoa(c.keys)
}

// membersAnswer is the Members answer of node id, which has applied up
// to applied (0: all the cluster committed).
func (c *Cluster) membersAnswer(id string, applied uint64) *apiv1.MembersResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &apiv1.MembersResponse{Members: append([]*apiv1.Member(nil), c.members...), ServedBy: id, AppliedIndex: c.commit}
	if applied != 0 && applied < c.commit {
		resp.AppliedIndex = applied
	}
	for _, m := range c.members {
		if m.GetLeader() {
			resp.LeaderId = m.GetNodeId()
		}
	}
	return resp
}
