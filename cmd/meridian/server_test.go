package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
)

// syncBuf is a bytes.Buffer safe to read while the server goroutine writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`serving: api (127\.0\.0\.1:\d+)`)

// startServerCmd runs `meridian server` in-process, the way a user would,
// and returns its API address once it prints its ready line.
func startServerCmd(t *testing.T, extra ...string) string {
	t.Helper()
	return startServerWith(t, append([]string{"--insecure"}, extra...)...)
}

// startServerWith is startServerCmd without the implied --insecure: the
// node "t1", its security as extra says.
func startServerWith(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte("server-test-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--bootstrap", "--node-id", "t1",
		"--data-dir", filepath.Join(dir, "data"), "--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--cluster-addr", "127.0.0.1:0",
		"--metrics-addr", "", "--gossip-addr", "127.0.0.1:0", "--gossip-insecure", "--hsm-passphrase-file", pass, "--log-level", "error",
		"--raft-heartbeat-timeout", "100ms", "--raft-election-timeout", "100ms", "--raft-leader-lease-timeout", "50ms"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuf{}, &syncBuf{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), out, errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("server exited %d: %s", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s of cancel")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("server exited %d: %s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server never became ready: %s", errOut.String())
	return ""
}

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestServerAndKeyCommandsEndToEnd runs the README tour against a real node
// started by the real `server` command.
func TestServerAndKeyCommandsEndToEnd(t *testing.T) {
	addr := startServerCmd(t)
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, stdin, append([]string{"key"}, append(args, "--insecure", "--addr", addr)...)...)
		if code != 0 {
			t.Fatalf("meridian key %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	id := regexp.MustCompile(`KeyId: (\S+)`).FindStringSubmatch(cli("", "create", "--description", "orders"))[1]
	cli("", "alias", "create", "--alias", "alias/orders", "--key", id)
	ct := filepath.Join(t.TempDir(), "ct.bin")
	cli("", "encrypt", "--key", "alias/orders", "--plaintext", "hello", "--context", "app=orders", "--raw-out", ct)
	if got := cli("", "decrypt", "--ciphertext-file", ct, "--binary", "--context", "app=orders", "--raw-out", "-"); got != "hello" {
		t.Fatalf("decrypt printed %q", got)
	}
	cli("", "rotate", "--key", "alias/orders")
	if got := cli("", "decrypt", "--ciphertext-file", ct, "--binary", "--context", "app=orders", "--raw-out", "-"); got != "hello" {
		t.Fatalf("decrypt after rotation printed %q", got)
	}
	_, errOut, code := runCLI(t, "", "key", "decrypt", "--ciphertext-file", ct, "--binary", "--context", "app=other", "--insecure", "--addr", addr)
	if code != 1 || !strings.Contains(errOut, "InvalidCiphertextException") {
		t.Fatalf("wrong context: exit %d, %q", code, errOut)
	}
	// Through the alias, the real node answers with the key it disabled.
	if out := cli("", "disable", "--key", "alias/orders"); !strings.HasPrefix(out, "KeyId: "+id+"\n") {
		t.Fatalf("disable printed %q, want KeyId %s", out, id)
	}
	_, errOut, code = runCLI(t, "", "key", "decrypt", "--ciphertext-file", ct, "--binary", "--context", "app=orders", "--insecure", "--addr", addr)
	if code != 1 || !strings.Contains(errOut, "DisabledException") {
		t.Fatalf("disabled key: exit %d, %q", code, errOut)
	}
}

func TestServerRefusesBadSetups(t *testing.T) {
	t.Setenv(envPassphrase, "")
	t.Setenv(envGossipKey, "")
	dir := t.TempDir()
	shortKey := filepath.Join(dir, "short.key")
	os.WriteFile(shortKey, []byte("c2hvcnQ=\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"plaintext without --insecure", []string{"server", "--data-dir", dir}, "refusing to serve without TLS"},
		{"no data dir", []string{"server", "--insecure"}, "--data-dir is required"},
		{"no passphrase", []string{"server", "--insecure", "--data-dir", dir}, "needs a passphrase"},
		{"bootstrap and join", []string{"server", "--insecure", "--data-dir", dir, "--bootstrap", "--join", "127.0.0.1:1"}, "exclusive"},
		{"unknown backend", []string{"server", "--insecure", "--data-dir", dir, "--hsm", "tpm"}, "unknown hsm backend"},
		{"bad log level", []string{"server", "--insecure", "--data-dir", dir, "--log-level", "loud"}, "--log-level"},
		{"gossip without key", []string{"server", "--insecure", "--data-dir", dir}, "gossip is encrypted"},
		{"short gossip key", []string{"server", "--insecure", "--data-dir", dir, "--gossip-key-file", shortKey}, "must be 32 bytes"},
		{"TLS without its CA", []string{"server", "--data-dir", dir, "--tls-cert", "n.pem", "--tls-key", "n-key.pem"}, "--tls-ca (the cluster's CA bundle) is missing"},
		{"TLS without its key", []string{"server", "--insecure", "--data-dir", dir, "--tls-cert", "n.pem", "--tls-ca", "ca.pem"}, "--tls-key (the certificate's private key) is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no passphrase" && tc.name != "plaintext without --insecure" {
				t.Setenv(envPassphrase, "a-test-passphrase")
			}
			if !strings.Contains(tc.name, "gossip") {
				t.Setenv(envGossipKey, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
			}
			_, errOut, code := runCLI(t, "", tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut, tc.want)
			}
			if strings.Contains(errOut, "a-test-passphrase") {
				t.Fatal("passphrase leaked into an error")
			}
		})
	}
}

// TestServerReadsEnvAndConfigFile: options come from MERIDIAN_* variables
// and from --config, flags winning over both.
func TestServerReadsEnvAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(conf, []byte("region: eu-west\nnode-id: from-file\nsnapshot-threshold: 64\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MERIDIAN_DATA_DIR", filepath.Join(dir, "d"))
	t.Setenv("MERIDIAN_NODE_ID", "from-env")
	t.Setenv(envPassphrase, "a-test-passphrase")
	t.Setenv(envGossipKey, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	cmd := newServerCmd()
	cmd.SetArgs([]string{"--config", conf, "--region", "ap-south"})
	if err := cmd.ParseFlags([]string{"--config", conf, "--region", "ap-south"}); err != nil {
		t.Fatal(err)
	}
	v := newViperForTest()
	if err := loadServerOptions(cmd, v); err != nil {
		t.Fatal(err)
	}
	cfg, err := serverConfig(v)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "ap-south" || cfg.NodeID != "from-env" || cfg.DataDir != filepath.Join(dir, "d") || cfg.SnapshotThreshold != 64 {
		t.Fatalf("got region %q node %q dir %q snap %d", cfg.Region, cfg.NodeID, cfg.DataDir, cfg.SnapshotThreshold)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("regoin: typo\n"), 0o600)
	cmd = newServerCmd()
	cmd.ParseFlags([]string{"--config", bad})
	if err := loadServerOptions(cmd, newViperForTest()); err == nil || !strings.Contains(err.Error(), `unknown option "regoin"`) {
		t.Fatalf("typo in config file: got %v", err)
	}
}

func newViperForTest() *viper.Viper { return viper.New() }

// TestServerRefusesSharedPINFile: the server reads --hsm-pin-file with the
// same owner-only rule as the operator commands, and never echoes the PIN.
func TestServerRefusesSharedPINFile(t *testing.T) {
	t.Setenv(envPIN, "")
	t.Setenv(envGossipKey, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	dir := t.TempDir()
	shared := filepath.Join(dir, "user.pin")
	if err := os.WriteFile(shared, []byte("pin-4711-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	base := []string{"server", "--insecure", "--data-dir", dir, "--hsm", "pkcs11",
		"--hsm-module", "/nonexistent/libpkcs11.so", "--hsm-token-label", "meridian"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"group-readable PIN file", append(append([]string{}, base...), "--hsm-pin-file", shared), "readable by group or others"},
		{"no PIN", base, envPIN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, "", tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut, tc.want)
			}
			if strings.Contains(errOut, "pin-4711-secret") {
				t.Fatal("PIN leaked into an error")
			}
		})
	}
}

// The ready line shows what other hosts dial when it differs from what
// the node bound (a bind to 0.0.0.0 behind an advertised name).
func TestServingLineShowsAdvertisedAddress(t *testing.T) {
	for _, tc := range []struct{ bound, adv, want string }{
		{"127.0.0.1:7400", "", "127.0.0.1:7400"},
		{"127.0.0.1:7400", "127.0.0.1:7400", "127.0.0.1:7400"},
		{"0.0.0.0:7400", "node1.example:7400", "0.0.0.0:7400 (advertised node1.example:7400)"},
	} {
		if got := advertised(tc.bound, tc.adv); got != tc.want {
			t.Errorf("advertised(%q, %q) = %q, want %q", tc.bound, tc.adv, got, tc.want)
		}
	}
}
