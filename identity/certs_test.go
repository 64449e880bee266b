package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// The tests make their own certificates with crypto/x509: package pki is
// the product's issuer, and identity must not depend on it.

const testTD = "meridian.test"

// testCA is a CA for tests: ECDSA P-256, valid an hour either side of now.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var serials atomic.Int64

func nextSerial() *big.Int { return big.NewInt(1000 + serials.Add(1)) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCA makes a self-signed CA; uris, if given, are its URI SANs (a SPIFFE
// CA names its trust domain as spiffe://<td>).
func newCA(t testing.TB, name string, uris ...string) *testCA {
	t.Helper()
	return newCAValid(t, name, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), uris...)
}

// newCAValid makes a CA valid from notBefore to notAfter.
func newCAValid(t testing.TB, name string, notBefore, notAfter time.Time, uris ...string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  parseURIs(t, uris),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pemCert(der)}
}

// leafSpec describes a leaf certificate; the zero value is valid now, for
// both client and server authentication, with no identity.
type leafSpec struct {
	uris      []string
	ou        []string
	dns       []string
	ips       []net.IP
	usage     []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

func nodeSpec(id, region string) leafSpec {
	s := leafSpec{uris: []string{"spiffe://" + testTD + "/node/" + id}}
	if region != "" {
		s.ou = []string{region}
	}
	return s
}

func clientSpec(name string) leafSpec {
	return leafSpec{uris: []string{"spiffe://" + testTD + "/client/" + name}}
}

func (s leafSpec) expired() leafSpec {
	s.notBefore, s.notAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	return s
}

func (s leafSpec) template(t testing.TB) *x509.Certificate {
	t.Helper()
	nb, na := s.notBefore, s.notAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(time.Hour)
	}
	usage := s.usage
	if usage == nil {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "leaf", OrganizationalUnit: s.ou},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		URIs:                  parseURIs(t, s.uris),
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
	}
}

// issue signs a leaf; it returns the certificate and key as PEM.
func (ca *testCA) issue(t testing.TB, s leafSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, s.template(t), ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pemCert(der), pemKey(t, key)
}

// selfSigned makes a leaf signed by its own key (and so by no CA).
func selfSigned(t testing.TB, s leafSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := s.template(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pemCert(der), pemKey(t, key)
}

func parseURIs(t testing.TB, uris []string) []*url.URL {
	t.Helper()
	var out []*url.URL
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func bundle(cas ...*testCA) []byte {
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.pem...)
	}
	return b
}

// tlsCert is a raw tls.Certificate, for the peers that do not use a Source
// (attackers, misconfigured servers).
func tlsCert(t testing.TB, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func leafOf(t testing.TB, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
