package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/identity"
	"github.com/meridiankms/meridian/pki"
)

// testPKI makes a CA for trust domain td in dir, a node certificate for
// node t1 and a client certificate for "ops", as `meridian tls` would.
func testPKI(t *testing.T, dir string) (ca string, node, client pki.Paths) {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.CreateCA(pki.DefaultCAConfig("server-test.meridian"), key)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := pki.WriteCA(dir, c, key, false)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.IssueNode(pki.NodeRequest{NodeID: "t1", Region: "local", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if node, err = pki.WriteIssued(dir, n, false); err != nil {
		t.Fatal(err)
	}
	cl, err := c.IssueClient(pki.ClientRequest{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if client, err = pki.WriteIssued(dir, cl, false); err != nil {
		t.Fatal(err)
	}
	return cp.Cert, node, client
}

// TestServerServesTLS: with --tls-cert, --tls-key and --tls-ca and no
// --insecure the server starts, says TLS is on, and serves a client that
// verifies it against the CA with a client certificate; a plaintext
// client gets nowhere.
func TestServerServesTLS(t *testing.T) {
	dir := t.TempDir()
	ca, nodeFiles, clientFiles := testPKI(t, filepath.Join(dir, "tls"))
	addr := startServerWith(t, "--tls-cert", nodeFiles.Cert, "--tls-key", nodeFiles.Key, "--tls-ca", ca)

	src, err := identity.NewSource(identity.Config{CertFile: clientFiles.Cert, KeyFile: clientFiles.Key, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := src.ClientConfig(identity.ClientPolicy{Plane: identity.ClientAPI, NodeID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.DefaultConfig(addr)
	cfg.TLS, cfg.DisableDiscovery = tlsCfg, true
	cl, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.CreateKey(t.Context(), &apiv1.CreateKeyRequest{Description: "over TLS"})
	if err != nil {
		t.Fatalf("create key over TLS: %v", err)
	}
	if _, err := cl.Encrypt(t.Context(), &apiv1.EncryptRequest{KeyId: res.GetKeyMetadata().GetKeyId(), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("encrypt over TLS: %v", err)
	}

	pcfg := client.DefaultConfig(addr)
	pcfg.Insecure, pcfg.DisableDiscovery, pcfg.MaxAttempts = true, true, 1
	plain, err := client.New(t.Context(), pcfg)
	if err == nil {
		defer plain.Close()
		_, err = plain.CreateKey(t.Context(), &apiv1.CreateKeyRequest{})
	}
	if err == nil || strings.Contains(err.Error(), "KeyId") {
		t.Fatalf("a plaintext client was served: %v", err)
	}
}
