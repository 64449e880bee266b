package pki

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzInspect feeds `meridian tls inspect` arbitrary file contents: it
// never panics; what it accepts is numbered 1..n with a well-formed
// fingerprint for each certificate; and the JSON description never holds
// a private key block's bytes. testdata/fuzz/FuzzInspect holds real
// certificates, keys and bundles as seeds.
func FuzzInspect(f *testing.F) {
	for _, s := range []string{"", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "\x30\x82\x01", "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"} {
		f.Add([]byte(s))
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := Inspect(data, now)
		if err != nil {
			return
		}
		if len(items) == 0 {
			t.Fatal("no error and nothing described")
		}
		for i, it := range items {
			if it.Index != i+1 {
				t.Fatalf("item %d has index %d", i, it.Index)
			}
			switch it.Type {
			case ItemCertificate:
				if it.Certificate == nil || len(it.Certificate.SHA256) != 95 {
					t.Fatalf("certificate item %d: %+v", i, it.Certificate)
				}
			case ItemPrivateKey:
				if it.PrivateKey == nil {
					t.Fatalf("key item %d without a description", i)
				}
			}
		}
		out, err := json.Marshal(items)
		if err != nil {
			t.Fatalf("description does not encode as JSON: %v", err)
		}
		for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
			if !strings.Contains(b.Type, "PRIVATE KEY") || len(b.Bytes) < 24 {
				continue
			}
			if enc := base64.StdEncoding.EncodeToString(b.Bytes[:18]); strings.Contains(string(out), enc) {
				t.Fatalf("the description quotes a %s block", b.Type)
			}
		}
	})
}

// FuzzSPIFFEIDs: any node id or client name the checks accept makes a
// valid SPIFFE ID that reads back as the same kind and name, and a
// trust domain the check accepts is a bare name.
func FuzzSPIFFEIDs(f *testing.F) {
	for _, s := range [][2]string{{"example.org", "n1"}, {"a", ".."}, {"Example.org", "n-1"}, {"spiffe://x", "a/b"}, {"x.y", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tdName, name string) {
		td, err := ParseTrustDomain(tdName)
		if err != nil {
			return
		}
		if td.Name() != tdName || len(tdName) > maxTrustDomainLen {
			t.Fatalf("trust domain %q accepted as %q", tdName, td.Name())
		}
		for _, c := range []struct {
			kind  Kind
			check func(string) error
			make  func(spiffeid.TrustDomain, string) (spiffeid.ID, error)
		}{{KindNode, CheckNodeID, NodeID}, {KindClient, CheckClientName, ClientID}} {
			if c.check(name) != nil {
				continue
			}
			id, err := c.make(td, name)
			if err != nil {
				t.Fatalf("%s %q passed its check but makes no ID: %v", c.kind, name, err)
			}
			back, err := spiffeid.FromURI(id.URL())
			if err != nil || back != id {
				t.Fatalf("%s does not survive its URI: %v", id, err)
			}
			if k, n := Classify(back, false); k != c.kind || n != name {
				t.Fatalf("%s classified as %s %q", id, k, n)
			}
			if k, _ := Classify(back, true); k != KindOther {
				t.Fatalf("a CA with a leaf's ID %s classified as %s", id, k)
			}
		}
	})
}
