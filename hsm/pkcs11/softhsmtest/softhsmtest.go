// Package softhsmtest sets up SoftHSM2 for tests: one token directory per
// test process (SoftHSM reads SOFTHSM2_CONF once, at C_Initialize) and a
// fresh token per test, created through the library so the running
// process sees it at once. Tests FAIL, not skip, when SoftHSM is missing.
//
//	func TestMain(m *testing.M) { os.Exit(softhsmtest.Run(m)) }
//
//	module, pin := softhsmtest.NewToken(t, softhsmtest.Label("node-a"))
package softhsmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11"
)

// ModulePath is where Debian and Ubuntu install SoftHSM2; the environment
// variable MERIDIAN_SOFTHSM_MODULE overrides it.
const ModulePath = "/usr/lib/softhsm/libsofthsm2.so"

// SOPIN is the security officer PIN of every test token (tests only).
const SOPIN = "meridian-test-so"

// InstallHint says how to get SoftHSM2.
const InstallHint = "SoftHSM2 is required for PKCS#11 tests: apt-get install -y softhsm2 (or set MERIDIAN_SOFTHSM_MODULE to libsofthsm2.so)"

// Module returns the SoftHSM2 module path in use.
func Module() string {
	if p := os.Getenv("MERIDIAN_SOFTHSM_MODULE"); p != "" {
		return p
	}
	return ModulePath
}

// Run points SOFTHSM2_CONF at a fresh temporary token directory, runs the
// tests and removes the directory. It returns 1 without running anything
// when SoftHSM2 is not installed. Call it from TestMain.
func Run(m *testing.M) int {
	if _, err := os.Stat(Module()); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", InstallHint, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "meridian-softhsm-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: softhsm token dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := writeConf(dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: softhsm conf: %v\n", err)
		return 1
	}
	return m.Run()
}

func writeConf(dir string) error {
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Setenv("SOFTHSM2_CONF", conf)
}

// TokenDir is the process's SoftHSM token directory (for tests that scan
// token files), or "" before Run.
func TokenDir() string {
	conf := os.Getenv("SOFTHSM2_CONF")
	if conf == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(conf), "tokens")
}

var labels atomic.Uint64

// Label returns a token label unique in this process, starting with
// prefix (cut so the label fits PKCS#11's 32 bytes).
func Label(prefix string) string {
	suffix := fmt.Sprintf("-%d", labels.Add(1))
	if len(prefix) > 32-len(suffix) {
		prefix = prefix[:32-len(suffix)]
	}
	return prefix + suffix
}

// NewToken initialises a token labelled label in the process's token
// directory and returns the module path and the token's random user PIN.
func NewToken(t testing.TB, label string) (modulePath, pin string) {
	t.Helper()
	if _, err := os.Stat(Module()); err != nil {
		t.Fatalf("%s: %v", InstallHint, err)
	}
	if os.Getenv("SOFTHSM2_CONF") == "" || TokenDir() == "" {
		t.Fatal("SOFTHSM2_CONF is not set: call softhsmtest.Run from TestMain")
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	pin = hex.EncodeToString(b)
	if err := pkcs11.InitToken(context.Background(), Module(), label, SOPIN, pin); err != nil {
		t.Fatalf("create SoftHSM token %q: %v", label, err)
	}
	return Module(), pin
}
