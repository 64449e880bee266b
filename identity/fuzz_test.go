package identity

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Fuzz targets for everything here that parses outside bytes: the PEM
// files an operator (or an attacker who can write them) provides, and the
// identity read from a peer's certificate. Seeds with real certificates
// live in testdata/fuzz.

// fuzzNow is inside the validity of the seed certificates in testdata.
var fuzzNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func FuzzParseCABundle(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cas, err := parseCABundle(data, fuzzNow)
		if err != nil {
			if cas != nil {
				t.Fatal("CAs returned with an error")
			}
			return
		}
		if len(cas) == 0 {
			t.Fatal("no CA and no error")
		}
		valid := false
		for _, c := range cas {
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Fatalf("non-CA certificate %s accepted in a bundle", describeCert(c))
			}
			valid = valid || checkValidity(c, fuzzNow) == nil
		}
		if !valid {
			t.Fatal("a bundle with no valid CA accepted")
		}
	})
}

func FuzzParseKeyPair(f *testing.F) {
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		[]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, self, err := parseKeyPair("cert.pem", certPEM, "key.pem", keyPEM, fuzzNow)
		if err != nil {
			if cert != nil || self != (Principal{}) {
				t.Fatal("material returned with an error")
			}
			assertQuotesNoKey(t, err.Error(), keyPEM)
			return
		}
		key, ok := cert.PrivateKey.(crypto.Signer)
		if !ok || cert.Leaf == nil || len(cert.Certificate) == 0 {
			t.Fatal("incomplete certificate")
		}
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.Leaf.PublicKey) {
			t.Fatal("accepted a key that does not match the certificate")
		}
		if self.IsAnonymous() || checkValidity(cert.Leaf, fuzzNow) != nil {
			t.Fatalf("accepted %v valid %v", self, checkValidity(cert.Leaf, fuzzNow))
		}
	})
}

// assertQuotesNoKey fails if msg holds a run of a key block's base64.
func assertQuotesNoKey(t *testing.T, msg string, keyPEM []byte) {
	t.Helper()
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return
		}
		b64 := base64.StdEncoding.EncodeToString(b.Bytes)
		for i := 0; i+24 <= len(b64); i++ {
			if strings.Contains(msg, b64[i:i+24]) {
				t.Fatalf("error %q quotes the key", msg)
			}
		}
	}
}

func FuzzFromCertificateDER(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		checkPrincipal(t, c)
	})
}

// FuzzFromCertificateSAN drives the identity rules directly with the two
// fields they read, far faster than through DER.
func FuzzFromCertificateSAN(f *testing.F) {
	f.Add("spiffe://meridian.test/node/n1", "eu-west-1", false)
	f.Add("spiffe://meridian.test/client/alice", "", false)
	f.Add("spiffe://corp.example/ns/a/sa/b", "x", false)
	f.Add("spiffe://meridian.test/node/a/b", "", false)
	f.Add("spiffe://meridian.test", "", true)
	f.Add("spiffe://Meridian.test/node/%41", "eu\n", false)
	f.Add("https://meridian.test/node/n1", "", false)
	f.Fuzz(func(t *testing.T, uri, ou string, isCA bool) {
		u, err := url.Parse(uri)
		if err != nil {
			return
		}
		c := &x509.Certificate{URIs: []*url.URL{u}, IsCA: isCA}
		if ou != "" {
			c.Subject = pkix.Name{OrganizationalUnit: []string{ou}}
		}
		checkPrincipal(t, c)
	})
}

// checkPrincipal holds FromCertificate to its promises on any input.
func checkPrincipal(t *testing.T, c *x509.Certificate) {
	p, err := FromCertificate(c)
	if err != nil {
		if p != (Principal{}) {
			t.Fatalf("Principal %v returned with error %v", p, err)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("error %q spans lines", err)
		}
		return
	}
	if c.IsCA || len(c.URIs) != 1 || p.IsAnonymous() || p.Method != AuthMTLS {
		t.Fatalf("accepted %v from a CA (%v) or with %d URIs", p, c.IsCA, len(c.URIs))
	}
	if back, err := spiffeid.FromString(p.ID.String()); err != nil || back != p.ID {
		t.Fatalf("ID %q does not round-trip: %v", p.ID, err)
	}
	switch p.Kind {
	case KindNode:
		if p.ID.Path() != "/node/"+p.Name || p.Name == "" || strings.Contains(p.Name, "/") {
			t.Fatalf("node %q from path %q", p.Name, p.ID.Path())
		}
	case KindClient:
		if p.ID.Path() != "/client/"+p.Name || p.Name == "" || strings.Contains(p.Name, "/") || p.Region != "" {
			t.Fatalf("client %q region %q from path %q", p.Name, p.Region, p.ID.Path())
		}
	case KindWorkload:
		if p.Name != "" || p.Region != "" || strings.HasPrefix(p.ID.Path(), "/node/") || strings.HasPrefix(p.ID.Path(), "/client/") {
			t.Fatalf("workload %v", p)
		}
	default:
		t.Fatalf("kind %v", p.Kind)
	}
	if s := p.String(); strings.ContainsAny(s, "\n\r\x00") {
		t.Fatalf("String() %q is not one safe line", s)
	}
}
