package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsCLI runs `meridian tls <args>`, failing the test unless it exits 0.
func tlsCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := cli(t, stdin, append([]string{"tls"}, args...)...)
	if code != 0 {
		t.Fatalf("meridian tls %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// makeCA runs `tls ca create` into a fresh directory and returns it.
func makeCA(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	tlsCLI(t, "", "ca", "create", "--trust-domain", "meridian.test", "--out-dir", dir)
	return dir
}

// The whole path an operator takes: a CA, a node and a client certificate,
// files with the right names and modes, no key in any output, and
// certificates that load as TLS key pairs and verify against ca.pem for
// what they are for.
func TestTLSCreateEndToEnd(t *testing.T) {
	caDir := makeCA(t)
	outDir := filepath.Join(t.TempDir(), "n1")
	nodeOut, nodeErr := tlsCLI(t, "", "cert", "create", "--ca-dir", caDir, "--node", "n1", "--region", "eu-west",
		"--dns", "n1.meridian.test,localhost", "--ip", "127.0.0.1", "--ip", "::1", "--out-dir", outDir)
	for _, want := range []string{
		"SPIFFEID: spiffe://meridian.test/node/n1\n", "Kind: node\n", "Region: eu-west\n",
		"DNSNames: n1.meridian.test, localhost\n", "IPAddresses: 127.0.0.1, ::1\n",
		"Certificate: " + filepath.Join(outDir, "node-n1.pem") + " (mode 0644)\n",
		"PrivateKey: " + filepath.Join(outDir, "node-n1-key.pem") + " (mode 0600)\n",
	} {
		if !strings.Contains(nodeOut, want) {
			t.Errorf("cert create output lacks %q:\n%s", want, nodeOut)
		}
	}
	if nodeErr != "" {
		t.Errorf("stderr %q", nodeErr)
	}
	clientDir := t.TempDir()
	clientOut, _ := tlsCLI(t, "", "cert", "create", "--ca-dir", caDir, "--client", "alice", "--days", "7", "--out-dir", clientDir)
	if !strings.Contains(clientOut, "SPIFFEID: spiffe://meridian.test/client/alice\n") {
		t.Errorf("client output:\n%s", clientOut)
	}

	modes := map[string]os.FileMode{
		filepath.Join(caDir, "ca.pem"): 0o644, filepath.Join(caDir, "ca-key.pem"): 0o600,
		filepath.Join(outDir, "node-n1.pem"): 0o644, filepath.Join(outDir, "node-n1-key.pem"): 0o600,
		filepath.Join(clientDir, "client-alice.pem"): 0o644, filepath.Join(clientDir, "client-alice-key.pem"): 0o600,
	}
	for path, want := range modes {
		if got := fileMode(t, path); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	if got := fileMode(t, caDir); got != 0o700 {
		t.Errorf("CA directory mode %o, want 700", got)
	}

	// No output holds any of a key file.
	for _, path := range []string{filepath.Join(caDir, "ca-key.pem"), filepath.Join(outDir, "node-n1-key.pem"),
		filepath.Join(clientDir, "client-alice-key.pem")} {
		keyPEM, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
			t.Fatalf("%s is not a PKCS#8 PEM key", path)
		}
		body := strings.Split(string(keyPEM), "\n")[1]
		for _, out := range []string{nodeOut, nodeErr, clientOut} {
			if strings.Contains(out, body[:32]) {
				t.Fatalf("output holds %s", path)
			}
		}
	}

	caPEM, _ := os.ReadFile(filepath.Join(caDir, "ca.pem"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, c := range []struct {
		cert, key string
		usage     x509.ExtKeyUsage
	}{
		{filepath.Join(outDir, "node-n1.pem"), filepath.Join(outDir, "node-n1-key.pem"), x509.ExtKeyUsageServerAuth},
		{filepath.Join(outDir, "node-n1.pem"), filepath.Join(outDir, "node-n1-key.pem"), x509.ExtKeyUsageClientAuth},
		{filepath.Join(clientDir, "client-alice.pem"), filepath.Join(clientDir, "client-alice-key.pem"), x509.ExtKeyUsageClientAuth},
	} {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.cert, err)
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{c.usage}}); err != nil {
			t.Fatalf("%s for %v: %v", c.cert, c.usage, err)
		}
	}

	// inspect describes all three kinds, and the key without its contents.
	out, _ := tlsCLI(t, "", "inspect", filepath.Join(caDir, "ca.pem"), filepath.Join(outDir, "node-n1.pem"),
		filepath.Join(outDir, "node-n1-key.pem"), filepath.Join(clientDir, "client-alice.pem"))
	for _, want := range []string{
		"ca.pem #1: certificate: CA of trust domain meridian.test, expires in 3649d 23h\n",
		"node-n1.pem #1: certificate: node n1 in region eu-west, expires in 89d 23h\n",
		"node-n1-key.pem #1: private key (not shown)\n  KeyAlgorithm: ECDSA P-256\n  Format: PKCS#8\n",
		"client-alice.pem #1: certificate: client alice, expires in 6d 23h\n",
		"  Issuer: CN=Meridian CA meridian.test (self-signed)\n",
		"  ExtKeyUsage: serverAuth, clientAuth\n", "  Region: eu-west\n", "  Node: n1\n", "  Client: alice\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Warning") {
		t.Errorf("warnings about our own certificates:\n%s", out)
	}
}

func TestTLSRefusesToOverwrite(t *testing.T) {
	caDir := makeCA(t)
	before, _ := os.ReadFile(filepath.Join(caDir, "ca-key.pem"))
	_, errOut, code := cli(t, "", "tls", "ca", "create", "--trust-domain", "meridian.test", "--out-dir", caDir)
	if code != exitError || !strings.Contains(errOut, "file exists") || !strings.Contains(errOut, "--force") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(caDir, "ca-key.pem")); string(after) != string(before) {
		t.Fatal("a refused ca create replaced the key")
	}
	tlsCLI(t, "", "ca", "create", "--trust-domain", "meridian.test", "--out-dir", caDir, "--force")
	if after, _ := os.ReadFile(filepath.Join(caDir, "ca-key.pem")); string(after) == string(before) {
		t.Fatal("--force did not replace the key")
	}

	out := t.TempDir()
	args := []string{"tls", "cert", "create", "--ca-dir", caDir, "--client", "bob", "--out-dir", out}
	if _, errOut, code := cli(t, "", args...); code != 0 {
		t.Fatal(errOut)
	}
	first, _ := os.ReadFile(filepath.Join(out, "client-bob.pem"))
	if _, errOut, code := cli(t, "", args...); code != exitError || !strings.Contains(errOut, "client-bob") || !strings.Contains(errOut, "--force") {
		t.Fatalf("second issue: exit %d, %q", code, errOut)
	}
	if _, errOut, code := cli(t, "", append(args, "--force")...); code != 0 {
		t.Fatal(errOut)
	}
	if renewed, _ := os.ReadFile(filepath.Join(out, "client-bob.pem")); string(renewed) == string(first) {
		t.Fatal("--force did not renew the certificate")
	}
}

// Every wrong command line exits 2 with an error naming what is wrong,
// and writes nothing.
func TestTLSUsageErrors(t *testing.T) {
	caDir := makeCA(t)
	out := filepath.Join(t.TempDir(), "out")
	cert := func(args ...string) []string {
		return append([]string{"cert", "create", "--ca-dir", caDir, "--out-dir", out}, args...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no trust domain", []string{"ca", "create", "--out-dir", out}, "--trust-domain is required"},
		{"no out dir for a CA", []string{"ca", "create", "--trust-domain", "x.test"}, "--out-dir is required"},
		{"bad trust domain", []string{"ca", "create", "--trust-domain", "Meridian.Test", "--out-dir", out}, `trust domain "Meridian.Test": trust domain characters are limited to lowercase`},
		{"trust domain as URI", []string{"ca", "create", "--trust-domain", "spiffe://x.test", "--out-dir", out}, "not a URI"},
		{"CA days zero", []string{"ca", "create", "--trust-domain", "x.test", "--out-dir", out, "--days", "0"}, "--days 0: a CA is valid for 1 to 36500 days"},
		{"CA days not a number", []string{"ca", "create", "--trust-domain", "x.test", "--out-dir", out, "--days", "ten"}, `invalid argument "ten" for "--days"`},
		{"positional argument", []string{"ca", "create", "x.test"}, "takes no positional arguments"},
		{"no CA dir", []string{"cert", "create", "--client", "a"}, "--ca-dir is required"},
		{"neither node nor client", cert(), "--node ID --region REGION, or --client NAME"},
		{"both node and client", cert("--node", "n1", "--region", "r", "--client", "a"), "not both"},
		{"node without region", cert("--node", "n1"), "--node needs --region"},
		{"client with dns", cert("--client", "a", "--dns", "a.test"), "for node certificates"},
		{"client with region", cert("--client", "a", "--region", "r"), "for node certificates"},
		{"bad node id", cert("--node", "n/1", "--region", "r"), `node id "n/1"`},
		{"bad client name", cert("--client", "al ice"), `client name "al ice"`},
		{"bad region", cert("--node", "n1", "--region", "eu west"), `region "eu west"`},
		{"bad DNS name", cert("--node", "n1", "--region", "r", "--dns", "a..test"), `DNS name "a..test"`},
		{"IP given as DNS", cert("--node", "n1", "--region", "r", "--dns", "10.0.0.1"), "give it as an IP SAN"},
		{"bad IP", cert("--node", "n1", "--region", "r", "--ip", "10.0.0.300"), `IP address "10.0.0.300"`},
		{"unspecified IP", cert("--node", "n1", "--region", "r", "--ip", "0.0.0.0"), "unspecified"},
		{"leaf days too long", cert("--client", "a", "--days", "826"), "--days 826: a certificate is valid for 1 to 825 days"},
		{"negative days", cert("--client", "a", "--days", "-3"), "--days -3"},
		{"unknown subcommand", []string{"cert", "issue"}, `unknown command "issue" for "meridian tls cert"`},
		{"inspect without files", []string{"inspect"}, "needs at least one FILE"},
		{"inspect stdin twice", []string{"inspect", "-", "-"}, "may be given once"},
		{"bad output", []string{"inspect", "-o", "yaml", "x"}, `unknown output format "yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, errOut, code := cli(t, "", append([]string{"tls"}, tt.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "--help' for usage.") {
				t.Errorf("stderr %q lacks %q", errOut, tt.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a usage error wrote %s (%v)", out, err)
	}
}

func TestTLSOperationErrors(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := cli(t, "", "tls", "cert", "create", "--ca-dir", dir, "--client", "a", "--out-dir", dir)
	if code != exitError || !strings.Contains(errOut, "ca.pem: no such file") || !strings.Contains(errOut, "meridian tls ca create") {
		t.Fatalf("missing CA: exit %d, %q", code, errOut)
	}
	// A leaf CA directory: ca.pem is a node certificate.
	caDir := makeCA(t)
	tlsCLI(t, "", "cert", "create", "--ca-dir", caDir, "--node", "n1", "--region", "r", "--ip", "127.0.0.1", "--out-dir", dir)
	if err := os.Rename(filepath.Join(dir, "node-n1.pem"), filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "node-n1-key.pem"), filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = cli(t, "", "tls", "cert", "create", "--ca-dir", dir, "--client", "a", "--out-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "not a CA certificate") {
		t.Fatalf("leaf as CA: exit %d, %q", code, errOut)
	}
}

func TestTLSNodeWithoutSANsWarns(t *testing.T) {
	caDir := makeCA(t)
	_, errOut := tlsCLI(t, "", "cert", "create", "--ca-dir", caDir, "--node", "n1", "--region", "r", "--out-dir", t.TempDir())
	if !strings.HasPrefix(errOut, "warning: no --dns or --ip") {
		t.Fatalf("stderr %q", errOut)
	}
}

func TestTLSInspect(t *testing.T) {
	caDir := makeCA(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(caDir, "ca.pem"))

	// A bad file among good ones: the good ones are described, the bad one
	// named on stderr, exit 1.
	out, errOut, code := cli(t, "", "tls", "inspect", garbage, filepath.Join(caDir, "ca.pem"), filepath.Join(dir, "missing.pem"))
	if code != exitError || !strings.Contains(out, "ca.pem #1: certificate: CA of trust domain meridian.test") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{garbage + ": cannot parse: no PEM block", "missing.pem: open"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}

	// stdin, and JSON.
	out, _ = tlsCLI(t, string(caPEM)+string(caPEM), "inspect", "-", "-o", "json")
	v := decodeJSON(t, out)
	files := v["files"].([]any)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	f := files[0].(map[string]any)
	items := f["items"].([]any)
	if f["file"] != "-" || len(items) != 2 {
		t.Fatalf("file %v, %d items", f["file"], len(items))
	}
	item := items[1].(map[string]any)
	wantJSON(t, "item", item, map[string]any{"type": "certificate", "pemType": "CERTIFICATE"})
	wantJSON(t, "certificate", item["certificate"].(map[string]any), map[string]any{
		"spiffeId": "spiffe://meridian.test", "kind": "ca", "trustDomain": "meridian.test", "isCA": true,
		"selfSigned": true, "keyAlgorithm": "ECDSA P-256", "expired": false, "keyUsage": []string{"keyCertSign", "cRLSign"},
		"warnings": []string{}, "dnsNames": []string{},
	})
	na := item["certificate"].(map[string]any)["notAfter"].(string)
	if !strings.HasSuffix(na, "Z") || strings.Contains(na, ".") {
		t.Errorf("notAfter %q is not RFC 3339 in UTC seconds", na)
	}

	// JSON errors go to stderr as one object, as for every command.
	_, errOut, code = cli(t, "", "tls", "inspect", "-o", "json", garbage)
	e := decodeJSON(t, errOut)["error"].(map[string]any)
	if code != exitError || e["code"] != "CLIError" || !strings.Contains(e["message"].(string), "no PEM block") {
		t.Fatalf("exit %d, %v", code, e)
	}
}

func TestTLSCreateJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	t.Setenv("MERIDIAN_OUTPUT", "json")
	out, _ := tlsCLI(t, "", "ca", "create", "--trust-domain", "meridian.test", "--out-dir", dir)
	wantJSON(t, "ca create", decodeJSON(t, out), map[string]any{
		"spiffeId": "spiffe://meridian.test", "trustDomain": "meridian.test",
		"certificate": filepath.Join(dir, "ca.pem"), "privateKey": filepath.Join(dir, "ca-key.pem"),
	})
	out, _ = tlsCLI(t, "", "cert", "create", "--ca-dir", dir, "--node", "n1", "--region", "r", "--dns", "a.test", "--out-dir", dir)
	wantJSON(t, "cert create", decodeJSON(t, out), map[string]any{
		"spiffeId": "spiffe://meridian.test/node/n1", "kind": "node", "name": "n1", "region": "r",
		"dnsNames": []string{"a.test"}, "certificate": filepath.Join(dir, "node-n1.pem"),
	})
	if out, _ = tlsCLI(t, "", "inspect", "-o", "text", filepath.Join(dir, "ca.pem")); !strings.Contains(out, "#1: certificate") {
		t.Fatalf("-o text did not win over MERIDIAN_OUTPUT: %q", out)
	}
}

// A certificate's fields are whatever its maker wrote: an escape sequence
// in the Subject is shown quoted, never sent raw to the terminal.
func TestTLSInspectQuotesControlCharacters(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil\x1b[2J"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "evil.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "tls", "inspect", path)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, '\x1b') {
		t.Fatalf("inspect sent an escape character to the terminal:\n%q", out)
	}
	if !strings.Contains(out, `\x1b[2J`) {
		t.Errorf("inspect does not show the quoted Subject:\n%s", out)
	}
}
