package pki

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestWriteModesAndNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "certs")
	ca, key := newCA(t, time.Time{})
	p, err := WriteCA(dir, ca, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cert != filepath.Join(dir, "ca.pem") || p.Key != filepath.Join(dir, "ca-key.pem") {
		t.Fatalf("paths %+v", p)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("new directory mode %o, want 700", m)
	}
	node, err := WriteIssued(dir, issueNode(t, ca, "n1"), false)
	if err != nil {
		t.Fatal(err)
	}
	client, err := WriteIssued(dir, issueClient(t, ca, "alice"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600,
		"node-n1.pem": 0o644, "node-n1-key.pem": 0o600,
		"client-alice.pem": 0o644, "client-alice-key.pem": 0o600,
	}
	for name, m := range want {
		if got := mode(t, filepath.Join(dir, name)); got != m {
			t.Errorf("%s: mode %o, want %o", name, got, m)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("%d files in the directory, want %d (temporary files left?)", len(entries), len(want))
	}
	if node.Cert != filepath.Join(dir, "node-n1.pem") || client.Key != filepath.Join(dir, "client-alice-key.pem") {
		t.Errorf("paths %+v %+v", node, client)
	}
	keyPEM, _ := os.ReadFile(p.Key)
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("CA key is not PKCS#8 PEM: %.30q", keyPEM)
	}
	if _, err := LoadCA(p.Cert, p.Key); err != nil {
		t.Fatal(err)
	}
}

// Overwriting a CA key orphans every certificate it issued, so an existing
// file is refused unless forced, and a refusal writes nothing at all.
func TestWriteRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	ca, key := newCA(t, time.Time{})
	p, err := WriteCA(dir, ca, key, false)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p.Key)
	ca2, key2 := newCA(t, time.Time{})
	_, err = WriteCA(dir, ca2, key2, false)
	wantErr(t, err, ErrExists, p.Key)
	if after, _ := os.ReadFile(p.Key); !bytes.Equal(before, after) {
		t.Fatal("a refused write changed the key")
	}

	// Only the certificate is there: still refused, and no key is left behind.
	leafDir := t.TempDir()
	lp := LeafPaths(leafDir, KindNode, "n1")
	if err := os.WriteFile(lp.Cert, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = WriteIssued(leafDir, issueNode(t, ca, "n1"), false)
	wantErr(t, err, ErrExists, "node-n1.pem")
	if _, err := os.Stat(lp.Key); !os.IsNotExist(err) {
		t.Fatalf("a refused write left %s: %v", lp.Key, err)
	}

	// Forced: replaced, with the right modes even over a looser old file.
	if err := os.Chmod(p.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCA(dir, ca2, key2, true); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(p.Cert, p.Key)
	if err != nil || !bytes.Equal(loaded.Certificate().Raw, ca2.Certificate().Raw) {
		t.Fatalf("forced write did not replace the CA: %v", err)
	}
	if m := mode(t, p.Key); m != 0o600 {
		t.Fatalf("forced key mode %o", m)
	}
}

func TestWriteFileNoClobberIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.pem")
	if err := WriteFile(path, []byte("one"), CertFileMode, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, WriteFile(path, []byte("two"), CertFileMode, false), ErrExists, path)
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("content %q", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary file left: %v", entries)
	}
}

func TestWriteCARefusesAnotherKey(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	_, other := newCA(t, time.Time{})
	_, err := WriteCA(t.TempDir(), ca, other, false)
	wantErr(t, err, ErrKeyMismatch)
}
