package identity

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// material is one consistent load of the files: what every handshake reads.
// It is immutable once built, so handshakes share it without locks and a
// reload swaps the whole of it at once (never a new certificate with the old
// key).
type material struct {
	cert *tls.Certificate // nil: no certificate configured
	self Principal        // cert's identity (zero without cert)
	cas  []*x509.Certificate
	pool *x509.CertPool
	td   spiffeid.TrustDomain
	// digest covers the files' bytes so Watch can skip events that changed
	// nothing; a hash, so the key's PEM is not kept around.
	digest [sha256.Size]byte
}

// loadMaterial reads and checks every file of cfg. Its errors name the file
// and what is wrong, and never quote file contents.
func loadMaterial(cfg Config, now time.Time) (*material, error) {
	m := &material{}
	h := sha256.New()
	add := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}

	caPEM, err := readFile("CA bundle", cfg.CAFile)
	if err != nil {
		return nil, err
	}
	add(caPEM)
	if m.cas, err = parseCABundle(caPEM, now); err != nil {
		return nil, fmt.Errorf("%w: CA bundle file %s: %w", ErrLoad, cfg.CAFile, err)
	}
	m.pool = x509.NewCertPool()
	for _, ca := range m.cas {
		m.pool.AddCert(ca)
	}

	if cfg.CertFile != "" {
		certPEM, err := readFile("certificate", cfg.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readFile("key", cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		add(certPEM)
		add(keyPEM)
		if m.cert, m.self, err = parseKeyPair(cfg.CertFile, certPEM, cfg.KeyFile, keyPEM, now); err != nil {
			return nil, err
		}
	}
	h.Sum(m.digest[:0])

	if m.td, err = resolveTrustDomain(cfg.TrustDomain, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	return m, nil
}

// readFile reads one of the files, saying which one is missing or
// unreadable in terms an operator can act on.
func readFile(role, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	// The *PathError repeats the path we already name; keep its cause only.
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s file %s: missing", ErrLoad, role, path)
	}
	return nil, fmt.Errorf("%w: %s file %s: unreadable: %v", ErrLoad, role, path, cause)
}

// parseKeyPair parses the certificate chain and its key, checks that they
// belong together, that the leaf is valid now, and that it names its holder
// with a SPIFFE ID.
func parseKeyPair(certFile string, certPEM []byte, keyFile string, keyPEM []byte, now time.Time) (*tls.Certificate, Principal, error) {
	chain, err := parseCertChain(certPEM)
	if err != nil {
		return nil, Principal{}, fmt.Errorf("%w: certificate file %s: %w", ErrLoad, certFile, err)
	}
	leaf := chain[0]
	if err := checkValidity(leaf, now); err != nil {
		return nil, Principal{}, fmt.Errorf("%w: certificate file %s: %w", ErrLoad, certFile, err)
	}
	self, err := FromCertificate(leaf)
	if err != nil {
		return nil, Principal{}, fmt.Errorf("%w: certificate file %s: %w", ErrLoad, certFile, err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, Principal{}, fmt.Errorf("%w: key file %s: %w", ErrLoad, keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, Principal{}, fmt.Errorf("%w: key file %s does not match the certificate in %s", ErrLoad, keyFile, certFile)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, self, nil
}

// parseCertChain returns every CERTIFICATE block, leaf first. Other blocks
// are skipped so that one file may hold both the chain and its key.
func parseCertChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no certificate (no PEM CERTIFICATE block)")
	}
	return chain, nil
}

// parsePrivateKey returns the first private key of data. Its errors never
// quote the block: even a key that fails to parse is mostly secret.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no private key (no PEM PRIVATE KEY block)")
		}
		switch b.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; Meridian reads unencrypted keys (protect the file with its permissions)")
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		default:
			continue
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot parse the %s block: %v", b.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

// parseCABundle returns every CA certificate of a PEM bundle. Everything in
// it must be a CA: a leaf in the bundle would be trusted as its own root,
// and any other block (a private key) means the wrong file was distributed.
// At least one CA must be valid now; expired ones are kept (they verify
// nothing, and an operator removes them at leisure after a rotation).
func parseCABundle(data []byte, now time.Time) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, not a CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", n, err)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("certificate %d %s is not a CA certificate", n, describeCert(c))
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, errors.New("no CA certificate (no PEM CERTIFICATE block)")
	}
	var invalid []error
	for i, c := range cas {
		if err := checkValidity(c, now); err != nil {
			invalid = append(invalid, fmt.Errorf("certificate %d: %w", i+1, err))
		}
	}
	if len(invalid) == len(cas) {
		// One line for the log; errors.Is sees the first CA's reason.
		err := invalid[0]
		for _, e := range invalid[1:] {
			err = fmt.Errorf("%w; %v", err, e)
		}
		return nil, fmt.Errorf("no CA in the bundle is valid now: %w", err)
	}
	return cas, nil
}

// checkValidity says "expired" or "not yet valid", with the dates, so an
// operator can tell a stale file from a skewed clock.
func checkValidity(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("%s %w at %s (now %s)", certName(c), ErrExpired, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("%s is %w: valid from %s (now %s)", certName(c), ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// certName names a certificate by its SPIFFE ID when it has a well-formed
// one, else by subject and serial.
func certName(c *x509.Certificate) string {
	if len(c.URIs) == 1 {
		if id, err := spiffeid.FromURI(c.URIs[0]); err == nil {
			return "certificate " + id.String()
		}
	}
	return "certificate " + describeCert(c)
}

// resolveTrustDomain picks the trust domain node identities are checked
// against: the configured one, else the own certificate's, else the one the
// bundle's CAs name (SPIFFE CAs may carry spiffe://<td> as their URI SAN).
// Without any, no node could be recognised, so loading fails rather than
// accepting any trust domain.
func resolveTrustDomain(configured string, m *material) (spiffeid.TrustDomain, error) {
	if configured != "" {
		return spiffeid.TrustDomainFromString(configured)
	}
	if m.cert != nil {
		return m.self.TrustDomain(), nil
	}
	var td spiffeid.TrustDomain
	for _, ca := range m.cas {
		cat, ok := caTrustDomain(ca)
		switch {
		case !ok:
		case td.IsZero():
			td = cat
		case td != cat:
			return spiffeid.TrustDomain{}, fmt.Errorf("trust domain unknown: the bundle's CAs name both %s and %s; set TrustDomain", td, cat)
		}
	}
	if td.IsZero() {
		return spiffeid.TrustDomain{}, errors.New("trust domain unknown: no certificate and no CA naming one; set TrustDomain")
	}
	return td, nil
}

// caTrustDomain returns the trust domain a CA certificate names in a
// spiffe:// URI SAN, if it names exactly one.
func caTrustDomain(ca *x509.Certificate) (spiffeid.TrustDomain, bool) {
	var td spiffeid.TrustDomain
	for _, u := range ca.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		t, err := spiffeid.TrustDomainFromURI(u)
		if err != nil || (!td.IsZero() && t != td) {
			return spiffeid.TrustDomain{}, false
		}
		td = t
	}
	return td, !td.IsZero()
}
