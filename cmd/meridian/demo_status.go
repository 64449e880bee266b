package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/node"
)

// demoStatus is what the status table shows, read from the nodes at one
// moment (collectDemoStatus) so that the drawing is a pure function.
type demoStatus struct {
	rows []demoRow
	// change is the latest leader change any node saw since a leader was
	// first known (its reason names the nodes), if there was one.
	change *cluster.LeaderChange
}

// demoRow is one node's line.
type demoRow struct {
	id, region string
	state      string // raft's: Leader, Follower, Candidate, Shutdown
	suffrage   string // voter or nonvoter, from the leader's configuration; "" unknown
	leaderID   string // the leader this node knows, "" none
	term       uint64
	applied    uint64
	contact    time.Duration // since this node heard from the leader; <0 never
}

// collectDemoStatus reads every node's Raft view.
func collectDemoStatus(nodes []*node.Node) demoStatus {
	var s demoStatus
	suffrage := map[string]string{}
	for _, n := range nodes {
		c := n.Cluster()
		st := c.Stats()
		s.rows = append(s.rows, demoRow{id: n.ID(), region: n.Region(), state: st.State, leaderID: st.LeaderID,
			term: st.Term, applied: st.FSMAppliedIndex, contact: st.LastContact})
		if st.State == raft.Leader.String() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			servers, err := c.Servers(ctx)
			cancel()
			if err == nil {
				for _, srv := range servers {
					suffrage[string(srv.ID)] = map[bool]string{true: "voter", false: "nonvoter"}[srv.Suffrage == raft.Voter]
				}
			}
		}
		// A node's first leader (From "") is its start, not a change.
		if ch, ok := c.LastLeaderChange(); ok && ch.From != "" && (s.change == nil || ch.At.After(s.change.At)) {
			s.change = &ch
		}
	}
	for i := range s.rows {
		s.rows[i].suffrage = suffrage[s.rows[i].id]
	}
	return s
}

// leader is the row of the node that is leader now, if any.
func (s demoStatus) leader() (demoRow, bool) {
	for _, r := range s.rows {
		if r.state == raft.Leader.String() {
			return r, true
		}
	}
	return demoRow{}, false
}

// renderDemoStatus draws the table: a headline (the leader and its term,
// or "electing a leader..." while no node leads), the last leader change
// and why, then one row per node. A node's ROLE is its suffrage while it
// knows the leader, "candidate" while it stands for election and
// "electing..." while it waits for one.
func renderDemoStatus(s demoStatus) string {
	var b bytes.Buffer
	var term uint64
	for _, r := range s.rows {
		term = max(term, r.term)
	}
	if l, ok := s.leader(); ok {
		fmt.Fprintf(&b, "  leader: %s (%s), term %d\n", l.id, l.region, l.term)
	} else {
		fmt.Fprintf(&b, "  electing a leader... (term %d)\n", term)
	}
	if c := s.change; c != nil {
		from, to := c.From, c.To
		if from == "" {
			from = "none"
		}
		if to == "" {
			to = "none"
		}
		fmt.Fprintf(&b, "  last leader change %s: %s -> %s (term %d): %s\n",
			c.At.Format(time.TimeOnly), from, to, c.Term, c.Reason)
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tREGION\tROLE\tLEADER\tSTATE\tAPPLIED\tLAST CONTACT")
	leader, _ := s.leader()
	for _, r := range s.rows {
		mark := ""
		if r.id == leader.id {
			mark = "*"
		}
		contact := "-"
		if r.contact > 0 {
			contact = r.contact.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.id, r.region, r.role(), mark, r.state, r.applied, contact)
	}
	tw.Flush()
	return b.String()
}

// role is the ROLE column.
func (r demoRow) role() string {
	switch {
	case r.state == raft.Shutdown.String():
		return "stopped"
	case r.state == raft.Candidate.String():
		return "candidate"
	case r.leaderID == "":
		return "electing..."
	case r.suffrage == "":
		return "-" // the leader's configuration was not readable
	}
	return r.suffrage
}

// withoutCounters drops what changes on every tick (applied index and
// contact age), so that a non-terminal prints only real changes.
func (s demoStatus) withoutCounters() demoStatus {
	rows := make([]demoRow, len(s.rows))
	for i, r := range s.rows {
		r.applied, r.contact = 0, 0
		rows[i] = r
	}
	return demoStatus{rows: rows, change: s.change}
}

// isTerminal reports whether w is a character device, where the table can
// be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// watchDemoStatus keeps the table current until ctx ends or the returned
// stop is called (which waits for the drawing goroutine): redrawn in place
// on a terminal, printed only when it changes elsewhere so logs stay
// readable.
func watchDemoStatus(ctx context.Context, w io.Writer, nodes []*node.Node, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tty := isTerminal(w)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastKey string
		lines := 0
		for {
			s := collectDemoStatus(nodes)
			table := renderDemoStatus(s)
			key := renderDemoStatus(s.withoutCounters())
			switch {
			case tty:
				if lines > 0 {
					fmt.Fprintf(w, "\033[%dA\033[J", lines)
				}
				fmt.Fprint(w, table)
				lines = bytes.Count([]byte(table), []byte("\n"))
			case key != lastKey:
				fmt.Fprintf(w, "\n%s status:\n%s", time.Now().Format(time.TimeOnly), table)
			}
			lastKey = key
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
