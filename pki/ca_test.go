package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCreateCA(t *testing.T) {
	before := time.Now()
	ca, key := newCA(t, time.Time{})
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA %v valid %v MaxPathLen %d zero %v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %v", c.KeyUsage)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://"+testTD || ca.TrustDomain().Name() != testTD {
		t.Errorf("URIs %v, trust domain %v", c.URIs, ca.TrustDomain())
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if len(c.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId %x", c.SubjectKeyId)
	}
	if got := c.NotAfter.Sub(before); got < DefaultCAValidity-time.Minute || got > DefaultCAValidity+time.Minute {
		t.Errorf("CA valid for %v, want %v", got, DefaultCAValidity)
	}
	if c.NotBefore.After(before) {
		t.Errorf("NotBefore %v is not backdated", c.NotBefore)
	}
	if c.CheckSignatureFrom(c) != nil || c.PublicKeyAlgorithm != x509.ECDSA || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("not a self-signed P-256 CA: %v %v", c.PublicKeyAlgorithm, c.SignatureAlgorithm)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate is not for the key")
	}
	other, _ := newCA(t, time.Time{})
	if other.Certificate().SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs share a serial")
	}
}

// opaqueSigner hides the key behind crypto.Signer alone, as an HSM's
// signer would: CreateCA and issuance must not need the key itself.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

func TestCAWithOpaqueSigner(t *testing.T) {
	key, _ := GenerateKey()
	ca, err := CreateCA(DefaultCAConfig(testTD), opaqueSigner{key})
	if err != nil {
		t.Fatal(err)
	}
	iss := issueNode(t, ca, "n1")
	if err := iss.Cert.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCA(ca.Certificate(), opaqueSigner{key}); err != nil {
		t.Fatalf("NewCA with an opaque signer: %v", err)
	}
}

func TestCreateCARefusesOtherKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, err := CreateCA(DefaultCAConfig(testTD), p384)
	wantErr(t, err, ErrInvalidInput, "ECDSA P-384", "ECDSA P-256")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, err = CreateCA(DefaultCAConfig(testTD), rsaKey)
	wantErr(t, err, ErrInvalidInput, "RSA 2048")
	_, err = CreateCA(DefaultCAConfig(testTD), nil)
	wantErr(t, err, ErrInvalidInput, "no signer")
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	ca, key := newCA(t, time.Time{})
	p, err := WriteCA(dir, ca, key, false)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.Certificate().Raw, ca.Certificate().Raw) || loaded.TrustDomain() != ca.TrustDomain() {
		t.Fatal("loaded CA differs")
	}
	// It issues, and what it issues chains to the original.
	iss := issueNode(t, loaded, "n1")
	if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCARefuses(t *testing.T) {
	dir := t.TempDir()
	ca, _ := newCA(t, time.Time{})
	_, otherKey := newCA(t, time.Time{})
	leaf := issueNode(t, ca, "n1")
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	otherKeyPEM, _ := EncodeKeyPEM(otherKey)
	leafKeyPEM, _ := leaf.KeyPEM()
	caCert := write("ca.pem", ca.CertPEM())
	wrongKey := write("wrong-key.pem", otherKeyPEM)
	leafCert := write("leaf.pem", leaf.CertPEM())
	leafKey := write("leaf-key.pem", leafKeyPEM)
	garbage := write("garbage.pem", []byte("not pem at all"))
	encrypted := write("enc.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))

	_, err := LoadCA(caCert, wrongKey)
	wantErr(t, err, ErrKeyMismatch, "is not the one certified by")
	_, err = LoadCA(leafCert, leafKey)
	wantErr(t, err, ErrNotCA, "is not a CA certificate")
	_, err = LoadCA(garbage, wrongKey)
	wantErr(t, err, ErrParse, "no CERTIFICATE PEM block", garbage)
	_, err = LoadCA(caCert, garbage)
	wantErr(t, err, ErrParse, "no private key PEM block")
	_, err = LoadCA(caCert, encrypted)
	wantErr(t, err, ErrParse, "encrypted")
	_, err = LoadCA(filepath.Join(dir, "missing.pem"), wrongKey)
	wantErr(t, err, os.ErrNotExist, "missing.pem")
}

// A CA certificate without its trust domain URI SAN cannot issue: the
// trust domain would have to come from somewhere else and could disagree.
func TestNewCAWithoutTrustDomain(t *testing.T) {
	key, _ := GenerateKey()
	ca, _ := CreateCA(DefaultCAConfig(testTD), key)
	c := *ca.Certificate()
	c.URIs = nil
	_, err := NewCA(&c, key)
	wantErr(t, err, ErrNotCA, "has no trust domain", "no URI SAN")
	u, _ := url.Parse("spiffe://" + testTD + "/ca")
	c.URIs = []*url.URL{u}
	_, err = NewCA(&c, key)
	wantErr(t, err, ErrNotCA, "has a path")
	c = *ca.Certificate()
	c.KeyUsage = x509.KeyUsageDigitalSignature
	_, err = NewCA(&c, key)
	wantErr(t, err, ErrNotCA, "may not sign certificates")
}
