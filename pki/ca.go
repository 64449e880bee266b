package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// backdate is how far before "now" a certificate's NotBefore is set, so a
// certificate issued on one machine is already valid on a peer whose clock
// runs a little behind.
const backdate = 5 * time.Minute

// maxPEMFile caps what is read from a certificate or key file: a bundle
// of thousands of certificates still fits, a wrong path (a disk image)
// fails fast.
const maxPEMFile = 1 << 20

// CAConfig describes a CA to create.
type CAConfig struct {
	// TrustDomain is the SPIFFE trust domain (example.org) the CA issues
	// for; it becomes the CA's own URI SAN, spiffe://<trust-domain>.
	TrustDomain string
	// Validity is how long the CA is valid; 0 means DefaultCAValidity.
	Validity time.Duration
	// Now is the issue time; zero means time.Now(). Tests set it in the
	// past to make certificates that have already expired.
	Now time.Time
}

// DefaultCAConfig is a CA for trustDomain with the default validity.
func DefaultCAConfig(trustDomain string) CAConfig {
	return CAConfig{TrustDomain: trustDomain, Validity: DefaultCAValidity}
}

// Validate checks the config without creating anything.
func (c CAConfig) Validate() error {
	if _, err := ParseTrustDomain(c.TrustDomain); err != nil {
		return err
	}
	_, err := checkValidity("CA", c.Validity, DefaultCAValidity, MaxCAValidity)
	return err
}

// CA is a cluster CA: its certificate and a signer for its key. The signer
// may be a software key (LoadCA) or, later, a key that never leaves an HSM.
type CA struct {
	cert   *x509.Certificate
	signer crypto.Signer
	td     spiffeid.TrustDomain
}

// Certificate is the CA certificate, the trust anchor peers verify against.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA certificate as PEM (the contents of ca.pem).
func (ca *CA) CertPEM() []byte { return EncodeCertPEM(ca.cert) }

// TrustDomain is the trust domain named in the CA's URI SAN.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Pool is a certificate pool holding only this CA, for tls.Config's RootCAs
// and ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// CreateCA self-signs a new CA certificate for signer's key, which must be
// ECDSA P-256: GenerateKey makes one in software; an HSM's signer works
// the same way.
func CreateCA(cfg CAConfig, signer crypto.Signer) (*CA, error) {
	td, err := ParseTrustDomain(cfg.TrustDomain)
	if err != nil {
		return nil, err
	}
	validity, err := checkValidity("CA", cfg.Validity, DefaultCAValidity, MaxCAValidity)
	if err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer for the CA key", ErrInvalidInput)
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the CA key is %s; the cluster CA is ECDSA P-256", ErrInvalidInput, keyAlgorithm(signer.Public()))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	now := nowOr(cfg.Now)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Meridian CA " + td.Name()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaves only: a leaked intermediate cannot be made.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		SubjectKeyId:   ski,
		URIs:           []*url.URL{td.ID().URL()},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return &CA{cert: cert, signer: signer, td: td}, nil
}

// NewCA makes a CA from an existing certificate and a signer for its key.
// The certificate must be a CA that may sign certificates, carry its trust
// domain as its one URI SAN (spiffe://<trust-domain>), and match signer.
func NewCA(cert *x509.Certificate, signer crypto.Signer) (*CA, error) {
	if cert == nil || signer == nil {
		return nil, fmt.Errorf("%w: a CA needs a certificate and a signer", ErrInvalidInput)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%w: %q is not a CA certificate (basic constraints CA:FALSE or absent)", ErrNotCA, cert.Subject.String())
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %q may not sign certificates (no keyCertSign key usage)", ErrNotCA, cert.Subject.String())
	}
	id, err := SPIFFEIDOf(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %q has no trust domain: %v; the cluster CA carries spiffe://<trust-domain> as its URI SAN", ErrNotCA, cert.Subject.String(), err)
	}
	if id.Path() != "" {
		return nil, fmt.Errorf("%w: the CA's SPIFFE ID %s has a path; want the bare trust domain spiffe://%s", ErrNotCA, id, id.TrustDomain().Name())
	}
	if !samePublicKey(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%w: the key is not the one certified by %q", ErrKeyMismatch, cert.Subject.String())
	}
	return &CA{cert: cert, signer: signer, td: id.TrustDomain()}, nil
}

// LoadCA reads a CA certificate (the first certificate in certFile) and
// its private key (keyFile, PKCS#8, SEC 1 or PKCS#1 PEM) and checks them
// as NewCA does.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := readPEMFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	cert, err := firstCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certFile, err)
	}
	keyPEM, err := readPEMFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	key, err := firstPrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s: %w: a %T cannot sign", keyFile, ErrParse, key)
	}
	ca, err := NewCA(cert, signer)
	if err != nil {
		return nil, fmt.Errorf("CA %s with key %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// readPEMFile reads a file of at most maxPEMFile bytes.
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes, more than any PEM file of certificates", ErrParse, path, maxPEMFile)
	}
	return data, nil
}

func firstCertificate(data []byte) (*x509.Certificate, error) {
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		if b.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: CERTIFICATE block: %v", ErrParse, err)
		}
		return cert, nil
	}
	return nil, fmt.Errorf("%w: no CERTIFICATE PEM block", ErrParse)
}

func firstPrivateKey(data []byte) (crypto.PrivateKey, error) {
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		switch b.Type {
		case pemPrivateKey, pemECKey, pemRSAKey, pemEncrypted:
			return parseKeyBlock(b)
		}
	}
	return nil, fmt.Errorf("%w: no private key PEM block", ErrParse)
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
