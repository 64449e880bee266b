package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/meridiankms/meridian/node"
)

// renderDemoStatus draws the status table: one row per node with its Raft
// role as the leader's configuration has it.
func renderDemoStatus(nodes []*node.Node) string {
	roles := map[string]string{}
	leader := ""
	for _, n := range nodes {
		if n.Cluster().IsLeader() {
			leader = n.ID()
			if servers, err := n.Cluster().Servers(context.Background()); err == nil {
				for _, s := range servers {
					roles[string(s.ID)] = map[bool]string{true: "voter", false: "nonvoter"}[s.Suffrage == 0]
				}
			}
		}
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tREGION\tROLE\tLEADER\tSTATE\tAPPLIED\tLAST CONTACT")
	for _, n := range nodes {
		st := n.Cluster().Stats()
		role := roles[n.ID()]
		if role == "" {
			role = "-"
		}
		contact := "-"
		if st.LastContact > 0 {
			contact = st.LastContact.Round(time.Millisecond).String()
		}
		mark := ""
		if n.ID() == leader {
			mark = "*"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.ID(), n.Region(), role, mark, st.State, st.FSMAppliedIndex, contact)
	}
	tw.Flush()
	return b.String()
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

// watchDemoStatus keeps the table current until ctx ends: redrawn in place
// on a terminal, printed only when it changes (ignoring contact ages)
// elsewhere so logs stay readable.
func watchDemoStatus(ctx context.Context, w io.Writer, nodes []*node.Node, every time.Duration) {
	tty := isTerminal(w)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var lastKey string
		lines := 0
		for {
			table := renderDemoStatus(nodes)
			key := stripContact(table)
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
}

// stripContact drops the columns that change every tick (applied index
// and contact age) so a non-terminal prints only real changes.
func stripContact(table string) string {
	var out bytes.Buffer
	for _, line := range bytes.Split([]byte(table), []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 5 {
			f = f[:len(f)-2]
		}
		out.Write(bytes.Join(f, []byte(" ")))
		out.WriteByte('\n')
	}
	return out.String()
}
