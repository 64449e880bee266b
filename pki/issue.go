package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// NodeRequest asks for a node certificate.
type NodeRequest struct {
	// NodeID is the node's id, the last segment of spiffe://<td>/node/<id>.
	NodeID string
	// Region is the node's region, recorded as the Subject's one
	// OrganizationalUnit.
	Region string
	// DNSNames and IPs are the names peers and clients dial the node by;
	// TLS clients that check host names need one of them to match.
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid; 0 means
	// DefaultLeafValidity. It may not outlive the CA.
	Validity time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Validate checks the request without a CA.
func (r NodeRequest) Validate() error {
	if err := CheckNodeID(r.NodeID); err != nil {
		return err
	}
	if err := CheckRegion(r.Region); err != nil {
		return err
	}
	for _, n := range r.DNSNames {
		if err := CheckDNSName(n); err != nil {
			return err
		}
	}
	for _, ip := range r.IPs {
		if err := checkIP(ip); err != nil {
			return err
		}
	}
	_, err := checkValidity("certificate", r.Validity, DefaultLeafValidity, MaxLeafValidity)
	return err
}

// ClientRequest asks for a client certificate.
type ClientRequest struct {
	// Name is the caller's name, the last segment of
	// spiffe://<td>/client/<name>.
	Name string
	// Validity is how long the certificate is valid; 0 means
	// DefaultLeafValidity. It may not outlive the CA.
	Validity time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Validate checks the request without a CA.
func (r ClientRequest) Validate() error {
	if err := CheckClientName(r.Name); err != nil {
		return err
	}
	_, err := checkValidity("certificate", r.Validity, DefaultLeafValidity, MaxLeafValidity)
	return err
}

// Issued is a new certificate and its private key.
type Issued struct {
	Kind Kind   // KindNode or KindClient
	Name string // the node id or client name
	ID   spiffeid.ID
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey `json:"-"` // never marshalled: it is the private key
}

// CertPEM is the certificate as PEM.
func (i *Issued) CertPEM() []byte { return EncodeCertPEM(i.Cert) }

// KeyPEM is the private key as PKCS#8 PEM.
func (i *Issued) KeyPEM() ([]byte, error) { return EncodeKeyPEM(i.Key) }

// IssueNode issues a node certificate: usable as a TLS server and as a
// TLS client, because node-to-node traffic is mutual TLS both ways.
func (ca *CA) IssueNode(r NodeRequest) (*Issued, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	id, err := NodeID(ca.td, r.NodeID)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: r.NodeID, OrganizationalUnit: []string{r.Region}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    uniqueNames(r.DNSNames),
		IPAddresses: uniqueIPs(r.IPs),
	}
	return ca.issue(KindNode, r.NodeID, id, tmpl, r.Validity, r.Now)
}

// IssueClient issues a client certificate: TLS client authentication only,
// so a stolen client certificate cannot impersonate a node's server.
func (ca *CA) IssueClient(r ClientRequest) (*Issued, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	id, err := ClientID(ca.td, r.Name)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: r.Name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(KindClient, r.Name, id, tmpl, r.Validity, r.Now)
}

// issue fills what every leaf shares (a fresh key, serial, validity, the
// one SPIFFE URI SAN, digitalSignature only) and signs tmpl.
func (ca *CA) issue(kind Kind, name string, id spiffeid.ID, tmpl *x509.Certificate, validity time.Duration, now time.Time) (*Issued, error) {
	validity, err := checkValidity("certificate", validity, DefaultLeafValidity, MaxLeafValidity)
	if err != nil {
		return nil, err
	}
	now = nowOr(now)
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		if !now.Before(ca.cert.NotAfter) {
			return nil, fmt.Errorf("%w: the CA expired on %s; create a new CA", ErrInvalidInput, ca.cert.NotAfter.UTC().Format(time.RFC3339))
		}
		left := ca.cert.NotAfter.Sub(now) / (24 * time.Hour)
		return nil, fmt.Errorf("%w: a validity of %s would outlive the CA, which expires on %s (%d days from now); ask for less or renew the CA",
			ErrInvalidInput, days(validity), ca.cert.NotAfter.UTC().Format(time.RFC3339), left)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = notAfter
	// ECDSA keys sign and never encipher: digitalSignature is the only
	// key usage, and the X509-SVID rules forbid the CA ones on a leaf.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	tmpl.SubjectKeyId = ski
	tmpl.URIs = []*url.URL{id.URL()}
	der, err := x509.CreateCertificate(nil, tmpl, ca.cert, &key.PublicKey, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("sign %s certificate for %s: %w", kind, id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate: %w", err)
	}
	return &Issued{Kind: kind, Name: name, ID: id, Cert: cert, Key: key}, nil
}

// uniqueIPs drops repeated addresses (an IPv4 address given in both forms
// counts once), keeping the first order.
func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// uniqueNames drops repeated DNS names (DNS is case-insensitive), keeping
// the first order.
func uniqueNames(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			out = append(out, n)
		}
	}
	return out
}
