package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every connection and output flag of the client commands falls back to
// its MERIDIAN_<FLAG> variable, and the flag wins over the variable.
func TestClientFlagsFromEnvironment(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("MERIDIAN_ADDR", addr)

	// MERIDIAN_INSECURE stands in for --insecure.
	if _, errOut, code := cli(t, "", "key", "list"); code != exitUsage || !strings.Contains(errOut, "--insecure") {
		t.Fatalf("without MERIDIAN_INSECURE: exit %d, %q", code, errOut)
	}
	t.Setenv("MERIDIAN_INSECURE", "1")
	if _, errOut, code := cli(t, "", "key", "list"); code != 0 {
		t.Fatalf("MERIDIAN_INSECURE=1: exit %d: %s", code, errOut)
	}
	// ... and --insecure=false on the command line still wins.
	if _, _, code := cli(t, "", "key", "list", "--insecure=false"); code != exitUsage {
		t.Fatalf("--insecure=false did not win over MERIDIAN_INSECURE: exit %d", code)
	}

	// MERIDIAN_OUTPUT, overridden by -o.
	t.Setenv("MERIDIAN_OUTPUT", "json")
	out, _, code := cli(t, "", "key", "list")
	if code != 0 || json.Unmarshal([]byte(out), new(map[string]any)) != nil {
		t.Fatalf("MERIDIAN_OUTPUT=json: exit %d, %q", code, out)
	}
	if out, _, _ = cli(t, "", "key", "list", "-o", "text"); !strings.HasPrefix(out, "NextMarker: m-2\n") {
		t.Fatalf("-o text did not win over MERIDIAN_OUTPUT: %q", out)
	}
	t.Setenv("MERIDIAN_OUTPUT", "")

	// MERIDIAN_NO_DISCOVERY: the client asks no node for the members.
	before := f.Discoveries()
	t.Setenv("MERIDIAN_NO_DISCOVERY", "true")
	if _, errOut, code := cli(t, "", "key", "list"); code != 0 {
		t.Fatal(errOut)
	}
	if f.Discoveries() != before {
		t.Fatal("MERIDIAN_NO_DISCOVERY=true still ran discovery")
	}
	t.Setenv("MERIDIAN_NO_DISCOVERY", "")
	if _, _, _ = cli(t, "", "key", "list"); f.Discoveries() == before {
		t.Fatal("discovery never ran without MERIDIAN_NO_DISCOVERY (the check above proves nothing)")
	}

	// MERIDIAN_TIMEOUT reaches the same validation as --timeout.
	t.Setenv("MERIDIAN_TIMEOUT", "-1s")
	if _, errOut, code := cli(t, "", "key", "list"); code != exitUsage || !strings.Contains(errOut, "MERIDIAN_TIMEOUT -1s: must be positive") {
		t.Fatalf("MERIDIAN_TIMEOUT=-1s: exit %d, %q", code, errOut)
	}
	if _, errOut, code := cli(t, "", "key", "list", "--timeout", "5s"); code != 0 {
		t.Fatalf("--timeout did not win over MERIDIAN_TIMEOUT: exit %d, %q", code, errOut)
	}
	t.Setenv("MERIDIAN_TIMEOUT", "")
}

// A value the flag would refuse is a usage error that names the variable,
// made before anything is dialled.
func TestBadEnvironmentValuesNameTheVariable(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("MERIDIAN_INSECURE", "true")
	tests := []struct{ env, value, want string }{
		{"MERIDIAN_INSECURE", "yes", `MERIDIAN_INSECURE="yes": not a valid --insecure (bool)`},
		{"MERIDIAN_TIMEOUT", "10", `MERIDIAN_TIMEOUT="10": not a valid --timeout (duration)`},
		{"MERIDIAN_OUTPUT", "yaml", `MERIDIAN_OUTPUT="yaml": not a valid --output (FORMAT): unknown output format "yaml"`},
		{"MERIDIAN_CONSISTENCY_TOKEN", "soon", `MERIDIAN_CONSISTENCY_TOKEN="soon": not a valid --consistency-token (uint64): invalid syntax`},
		{"MERIDIAN_NO_DISCOVERY", "maybe", `MERIDIAN_NO_DISCOVERY="maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			_, errOut, code := cli(t, "", "key", "list", "--addr", addr)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 with %q", code, errOut, tt.want)
			}
		})
	}
	if n := len(f.Calls()); n != 0 {
		t.Fatalf("bad environment values reached the server %d times", n)
	}
}

// --region that no discovered node is in is a warning, not an error.
func TestRegionWithoutNodesWarns(t *testing.T) {
	_, addr := startFake(t) // its one member is in us-east
	_, errOut, code := keyCLI(t, addr, "", "list", "--region", "mars")
	want := `warning: --region "mars": no discovered node is in that region (regions: us-east)`
	if code != 0 || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, stderr %q; want %q", code, errOut, want)
	}
	t.Setenv("MERIDIAN_REGION", "venus")
	if _, errOut, _ = keyCLI(t, addr, "", "list"); !strings.Contains(errOut, `warning: MERIDIAN_REGION "venus"`) {
		t.Fatalf("stderr %q does not name MERIDIAN_REGION", errOut)
	}
	if _, errOut, code = keyCLI(t, addr, "", "list", "--region", "us-east"); code != 0 || errOut != "" {
		t.Fatalf("a known region: exit %d, stderr %q", code, errOut)
	}
	// Without discovery the nodes' regions are unknown: no guess is made.
	if _, errOut, _ = keyCLI(t, addr, "", "list", "--region", "mars", "--no-discovery"); errOut != "" {
		t.Fatalf("--no-discovery: stderr %q", errOut)
	}
}

// A mistyped command gets cobra's "did you mean" suggestion, at every level.
func TestUnknownCommandSuggestions(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"key", "encrpyt"}, "unknown command \"encrpyt\" for \"meridian key\"\n\nDid you mean this?\n\tencrypt\n"},
		{[]string{"kye"}, "Did you mean this?\n\tkey\n"},
		{[]string{"key", "alias", "lst"}, "Did you mean this?\n\tlist\n"},
		{[]string{"operator", "membres"}, "Did you mean this?\n\tmembers\n"},
	}
	for _, tt := range tests {
		_, errOut, code := cli(t, "", tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tt.args, code, errOut, tt.want)
		}
	}
	if _, errOut, _ := cli(t, "", "key", "frobnicate"); strings.Contains(errOut, "Did you mean") {
		t.Errorf("a suggestion for nonsense: %q", errOut)
	}
}
