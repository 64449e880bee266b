package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// pinFile writes a PIN file private to its owner.
func pinFile(t *testing.T, pin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs11Flags(label, pinPath string) []string {
	return []string{"--hsm", "pkcs11", "--hsm-module", softhsmtest.Module(), "--hsm-token-label", label, "--hsm-pin-file", pinPath}
}

// noSecret fails the test when a secret shows in any output.
func noSecret(t *testing.T, secret string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, secret) {
			t.Fatalf("output holds a secret: %q", o)
		}
	}
}

func TestHSMInitAndOfflineStatusOnSoftHSM(t *testing.T) {
	label := softhsmtest.Label("cli-init")
	const pin, soPIN = "user-pin-4821", "so-pin-9317"
	user, so := pinFile(t, pin), pinFile(t, soPIN)
	init := append([]string{"operator", "hsm", "init", "--hsm-so-pin-file", so}, pkcs11Flags(label, user)...)
	out, errOut, code := cli(t, "", init...)
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `initialised token "`+label+`"`) || !strings.Contains(out, "domain key: v1 created inside the HSM") {
		t.Fatalf("init output:\n%s", out)
	}
	noSecret(t, pin, out, errOut)

	status := append([]string{"operator", "hsm", "status", "--offline"}, pkcs11Flags(label, user)...)
	out, errOut, code = cli(t, "", status...)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"Backend: pkcs11", "token \"" + label + "\"", "Healthy: true", "DomainKeyVersions: v1",
		"Mechanisms: 12 of 12 present", "CKM_AES_KEY_WRAP_PAD", "CKM_RSA_PKCS_OAEP"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	noSecret(t, pin, out, errOut)

	out, _, code = cli(t, "", append(status, "-o", "json")...)
	var js struct {
		Backend           string `json:"backend"`
		DomainKeyVersions []int  `json:"domainKeyVersions"`
		Mechanisms        []struct {
			Name    string `json:"name"`
			Present bool   `json:"present"`
		} `json:"mechanisms"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js.Backend != "pkcs11" || len(js.DomainKeyVersions) != 1 || len(js.Mechanisms) != 12 {
		t.Fatalf("json status (exit %d): %s", code, out)
	}

	// A second init with the same label refuses, and says why.
	_, errOut, code = cli(t, "", init...)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second init: exit %d: %s", code, errOut)
	}
	noSecret(t, soPIN, errOut)
}

func TestHSMInitVariantsOnSoftHSM(t *testing.T) {
	t.Run("joining node: no domain key", func(t *testing.T) {
		label := softhsmtest.Label("cli-join")
		user, so := pinFile(t, "join-user-pin"), pinFile(t, "join-so-pin")
		out, errOut, code := cli(t, "", append([]string{"operator", "hsm", "init", "--no-domain-key", "--hsm-so-pin-file", so}, pkcs11Flags(label, user)...)...)
		if code != 0 || !strings.Contains(out, "domain key: none") {
			t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = cli(t, "", append([]string{"operator", "hsm", "status", "--offline"}, pkcs11Flags(label, user)...)...)
		if code != 0 || !strings.Contains(out, "Healthy: false") || !strings.Contains(out, "domain key not present") ||
			!strings.Contains(out, "DomainKeyVersions: none") {
			t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("vendor-initialised token", func(t *testing.T) {
		label := softhsmtest.Label("cli-exist")
		_, pin := softhsmtest.NewToken(t, label)
		out, errOut, code := cli(t, "", append([]string{"operator", "hsm", "init", "--existing-token"}, pkcs11Flags(label, pinFile(t, pin))...)...)
		if code != 0 || !strings.Contains(out, "found (initialised beforehand)") || !strings.Contains(out, "v1") {
			t.Fatalf("init --existing-token: exit %d\n%s%s", code, out, errOut)
		}
		_, errOut, code = cli(t, "", append([]string{"operator", "hsm", "init", "--existing-token"}, pkcs11Flags(label, pinFile(t, pin))...)...)
		if code != 1 || !strings.Contains(errOut, "domain key already present") {
			t.Fatalf("second init --existing-token: exit %d: %s", code, errOut)
		}
	})
}

func TestHSMStatusOfflineErrors(t *testing.T) {
	label := softhsmtest.Label("cli-err")
	_, pin := softhsmtest.NewToken(t, label)
	const wrong = "not-the-pin-7731"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong PIN", pkcs11Flags(label, pinFile(t, wrong)), 1, "wrong PIN"},
		{"unknown label", pkcs11Flags("no-such-token", pinFile(t, pin)), 1, `no token labelled "no-such-token"`},
		{"missing module", []string{"--hsm", "pkcs11", "--hsm-module", "/nonexistent/libpkcs11.so", "--hsm-token-label", label, "--hsm-pin-file", pinFile(t, pin)}, 1, "does not exist"},
		{"no PIN", []string{"--hsm", "pkcs11", "--hsm-module", softhsmtest.Module(), "--hsm-token-label", label}, 2, "MERIDIAN_HSM_PIN"},
		{"no label", []string{"--hsm", "pkcs11", "--hsm-module", softhsmtest.Module()}, 2, "--hsm-token-label"},
		{"bad backend", []string{"--hsm", "tpm"}, 2, "want soft or pkcs11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MERIDIAN_HSM_PIN", "")
			out, errOut, code := cli(t, "", append([]string{"operator", "hsm", "status", "--offline"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d with %q: %s", code, tc.code, tc.want, errOut)
			}
			noSecret(t, wrong, out, errOut)
			noSecret(t, pin, out, errOut)
		})
	}
	t.Run("world-readable PIN file", func(t *testing.T) {
		p := pinFile(t, pin)
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := cli(t, "", append([]string{"operator", "hsm", "status", "--offline"}, pkcs11Flags(label, p)...)...)
		if code != 2 || !strings.Contains(errOut, "chmod 600") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestHSMInitSoft(t *testing.T) {
	const pass = "soft-passphrase-5521"
	t.Setenv("MERIDIAN_HSM_PASSPHRASE", pass)
	path := filepath.Join(t.TempDir(), "hsm", "domain.sealed")
	init := []string{"operator", "hsm", "init", "--hsm-soft-path", path, "--insecure-fast-kdf"}
	out, errOut, code := cli(t, "", init...)
	if code != 0 || !strings.Contains(out, "created sealed domain-key file "+path) || !strings.Contains(out, "domain key: v1") {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sealed file: %v, %v", st, err)
	}
	status := []string{"operator", "hsm", "status", "--offline", "--hsm-soft-path", path}
	out, errOut, code = cli(t, "", status...)
	if code != 0 || !strings.Contains(out, "Backend: soft") || !strings.Contains(out, "Detail: "+path) ||
		!strings.Contains(out, "Healthy: true") || !strings.Contains(out, "DomainKeyVersions: v1") || strings.Contains(out, "Mechanisms") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	noSecret(t, pass, out, errOut)

	_, errOut, code = cli(t, "", init...)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second init: exit %d: %s", code, errOut)
	}
	t.Setenv("MERIDIAN_HSM_PASSPHRASE", "a-wrong-passphrase")
	_, errOut, code = cli(t, "", status...)
	if code != 1 || !strings.Contains(errOut, "wrong passphrase") || strings.Contains(errOut, "a-wrong-passphrase") {
		t.Fatalf("wrong passphrase: exit %d: %s", code, errOut)
	}

	empty := filepath.Join(t.TempDir(), "joiner.sealed")
	t.Setenv("MERIDIAN_HSM_PASSPHRASE", pass)
	out, errOut, code = cli(t, "", "operator", "hsm", "init", "--hsm-soft-path", empty, "--insecure-fast-kdf", "--no-domain-key")
	if code != 0 || !strings.Contains(out, "domain key: none") {
		t.Fatalf("init --no-domain-key: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = cli(t, "", "operator", "hsm", "init", "--hsm-soft-path", empty, "--existing-token")
	if code != 2 || !strings.Contains(errOut, "--existing-token applies to --hsm pkcs11 only") {
		t.Fatalf("--existing-token with soft: exit %d: %s", code, errOut)
	}
}
