package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/internal/fakekms"
)

// A malformed --addr is a usage error saying what is wrong, before any
// dial: not "connection failed" for an address nothing could listen on.
func TestAddrSyntaxIsCheckedBeforeDialling(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string // MERIDIAN_ADDR
		want string
	}{
		{"no port", []string{"key", "list", "--addr", "localhost"}, "",
			`--addr "localhost" has no port; give host:port: --addr localhost:7400`},
		{"URL", []string{"key", "list", "--addr", "http://127.0.0.1:7400"}, "",
			`--addr "http://127.0.0.1:7400" is a URL; the gRPC API is addressed as host:port: --addr 127.0.0.1:7400`},
		{"URL without a port", []string{"key", "list", "--addr", "https://kms.example.com/"}, "",
			"--addr kms.example.com:7400"},
		{"URL from the environment", []string{"key", "list"}, "http://10.0.0.1:7420",
			`MERIDIAN_ADDR "http://10.0.0.1:7420" is a URL; the gRPC API is addressed as host:port: MERIDIAN_ADDR=10.0.0.1:7420`},
		{"second of several", []string{"key", "list", "--addr", "127.0.0.1:7400,localhost"}, "",
			`--addr "localhost" has no port`},
		{"bad port", []string{"key", "list", "--addr", "127.0.0.1:api"}, "", `port "api" is not a number`},
		{"IPv6 without brackets", []string{"key", "list", "--addr", "::1"}, "", "[ADDRESS]:port for IPv6"},
		{"operator command", []string{"operator", "hsm", "status", "--addr", "localhost"}, "", `--addr "localhost" has no port`},
		{"sync --from", []string{"operator", "domain-key", "sync", "--addr", "127.0.0.1:7400", "--from", "http://10.0.0.1:7400"}, "",
			`--from "http://10.0.0.1:7400" is a URL; the gRPC API is addressed as host:port: --from 10.0.0.1:7400`},
		{"chaos remote", []string{"chaos", "run", "--harness", "remote", "--addr", "localhost"}, "", `--addr "localhost" has no port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("MERIDIAN_ADDR", tt.env)
			}
			_, errOut, code := cli(t, "", append(tt.args, "--insecure")...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 with %q", code, errOut, tt.want)
			}
		})
	}
}

// --addr at an HTTP/1.1 server (a node's metrics port) says so, through
// the SDK (key, operator members) and through the Operator API alike.
func TestAddrAtAnHTTPEndpoint(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("# HELP up\n")) })}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	addr := lis.Addr().String()

	const want = "this is an HTTP endpoint (metrics?), not the gRPC API"
	for _, args := range [][]string{{"key", "list"}, {"operator", "members"}, {"operator", "hsm", "status"}} {
		_, errOut, code := cli(t, "", append(args, "--insecure", "--addr", addr)...)
		if code != exitError || !strings.Contains(errOut, want) || strings.Contains(errOut, "is a node listening there") {
			t.Errorf("%v: exit %d, stderr %q; want %q", args, code, errOut, want)
		}
	}
	// -o json names it a connection error.
	_, errOut, _ := cli(t, "", "operator", "hsm", "status", "--insecure", "--addr", addr, "-o", "json")
	var got struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal([]byte(errOut), &got) != nil || got.Error.Code != codeConnection || !strings.Contains(got.Error.Message, want) {
		t.Errorf("json error %q", errOut)
	}
}

// Nothing listening is still reported as that.
func TestAddrWithNothingListening(t *testing.T) {
	addr := fakekms.ClosedAddr(t)
	_, errOut, code := cli(t, "", "key", "list", "--insecure", "--addr", addr)
	if code != exitError || !strings.Contains(errOut, "dial "+addr+": connection failed (is a node listening there?): dial tcp "+addr+": connect: connection refused") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
