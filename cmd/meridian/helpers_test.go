package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/internal/fakekms"
)

// startFake serves a one-node fake cluster, node n1 in us-east, until the
// test ends. Its first write answers commit index 42, a number no output
// shows by accident.
func startFake(t *testing.T) (*fakekms.Server, string) {
	t.Helper()
	f := fakekms.Start(t, fakekms.Config{ID: "n1", Region: "us-east"})
	f.Cluster().QueueCommits(42)
	return f, f.Addr()
}

// cli runs one command line in-process, as main would.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// keyCLI runs `meridian key <args> --insecure --addr addr`.
func keyCLI(t *testing.T, addr, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return cli(t, stdin, append(append([]string{"key"}, args...), "--insecure", "--addr", addr)...)
}
