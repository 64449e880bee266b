package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/buildinfo"
	"github.com/meridiankms/meridian/node/nodetest"
)

// A node left without a BuildVersion advertises the binary's own version:
// to its peers by gossip and in Members, as `operator members` shows it,
// and in its start-up log line.
func TestMembersReportBuildVersion(t *testing.T) {
	want := buildinfo.Version()
	if want == "" {
		t.Fatal("buildinfo.Version() is empty")
	}
	c := startRegions(t, 1, nil)
	cl := c.Client(0)
	var last []*apiv1.Member
	deadline := time.Now().Add(nodetest.WaitTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cl.Members(ctx, &apiv1.MembersRequest{})
		cancel()
		if err == nil {
			last = resp.GetMembers()
			ok := len(last) == len(c.Nodes)
			for _, m := range last {
				// Other nodes' versions come from gossip, so wait until it reported them.
				ok = ok && m.GetBuildVersion() == want
			}
			if ok {
				if !bytes.Contains(c.Logs.Bytes(), []byte("version="+want)) {
					t.Fatalf("no start-up log line carries version=%s", want)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("members never all reported version %q: %v", want, last)
}
