package main

import (
	"fmt"
	"strings"
	"testing"
)

// Writes print the key id the server resolved --key to, as rotate does,
// never an echo of the alias the user typed.
func TestWritesPrintTheResolvedKeyID(t *testing.T) {
	f, addr := startFake(t)
	for _, args := range [][]string{
		{"enable"}, {"disable"}, {"cancel-deletion"},
		{"update-description", "--description", "x"},
		{"tag", "add", "--tag", "a=1"}, {"tag", "remove", "--tag-key", "a"},
		{"rotation", "enable"}, {"rotation", "disable"},
	} {
		out, errOut, code := keyCLI(t, addr, "", append(args, "--key", "alias/orders")...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
			continue
		}
		if !strings.HasPrefix(out, "KeyId: k-1\n") || strings.Contains(out, "alias/orders") {
			t.Errorf("%v printed %q; want the resolved KeyId k-1", args, out)
		}
	}
	out, _, _ := keyCLI(t, addr, "", "alias", "create", "--alias", "alias/new", "--key", "meridian:key/k-1")
	if want := fmt.Sprintf("AliasName: alias/new\nTargetKeyId: k-1\nCommitIndex: %d\n", f.Cluster().Commit()); out != want {
		t.Errorf("alias create printed %q", out)
	}
}
