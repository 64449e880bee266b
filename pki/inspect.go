package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"time"
)

// ItemType is what one PEM block of an inspected file holds.
type ItemType string

const (
	ItemCertificate ItemType = "certificate"
	ItemPrivateKey  ItemType = "privateKey"
	ItemOther       ItemType = "other" // a PEM block of another type, not inspected
)

// Item describes one block of an inspected file.
type Item struct {
	Index       int       `json:"index"` // 1-based position in the file
	Type        ItemType  `json:"type"`
	PEMType     string    `json:"pemType"` // "" for DER input
	Certificate *CertInfo `json:"certificate,omitempty"`
	PrivateKey  *KeyInfo  `json:"privateKey,omitempty"`
}

// CertInfo describes a certificate as an operator needs to check it.
type CertInfo struct {
	Subject      string `json:"subject"`
	Issuer       string `json:"issuer"`
	SelfSigned   bool   `json:"selfSigned"`
	SerialNumber string `json:"serialNumber"` // hex
	// SPIFFEID is the one URI SAN when it is a SPIFFE ID; Kind and Name
	// are read from it (Name: the node id or client name).
	SPIFFEID    string    `json:"spiffeId"`
	TrustDomain string    `json:"trustDomain"`
	Kind        Kind      `json:"kind"`
	Name        string    `json:"name"`
	Region      string    `json:"region"` // node certificates: the Subject's one OU
	DNSNames    []string  `json:"dnsNames"`
	IPAddresses []string  `json:"ipAddresses"`
	URIs        []string  `json:"uris"`
	IsCA        bool      `json:"isCA"`
	KeyUsage    []string  `json:"keyUsage"`
	ExtKeyUsage []string  `json:"extKeyUsage"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	// ExpiresIn is NotAfter relative to the inspection time: "89d 23h",
	// or "expired 2d 4h ago".
	ExpiresIn    string `json:"expiresIn"`
	Expired      bool   `json:"expired"`
	SHA256       string `json:"sha256Fingerprint"` // of the DER certificate
	KeyAlgorithm string `json:"keyAlgorithm"`
	// PublicKeySHA256 is the SHA-256 of the public key (DER
	// SubjectPublicKeyInfo); a private key that matches shows the same.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// Warnings say what would stop Meridian accepting the certificate for
	// what it seems meant for.
	Warnings []string `json:"warnings"`
}

// KeyInfo describes a private key without ever holding any of it.
type KeyInfo struct {
	Format          string `json:"format"`    // PKCS#8, SEC 1, PKCS#1
	Algorithm       string `json:"algorithm"` // "ECDSA P-256"; "" when encrypted
	Encrypted       bool   `json:"encrypted"`
	PublicKeySHA256 string `json:"publicKeySha256"` // "" when encrypted
}

// Inspect describes every certificate and private key in data: PEM (one
// block or a bundle; text around the blocks is ignored), or a DER
// certificate. now is the time "expires in" counts from. Input that holds
// neither, or a block that does not parse, is an ErrParse error naming the
// block.
func Inspect(data []byte, now time.Time) ([]Item, error) {
	var items []Item
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		item := Item{Index: len(items) + 1, PEMType: b.Type}
		switch b.Type {
		case pemCertificate:
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: block %d (CERTIFICATE): %v", ErrParse, item.Index, err)
			}
			item.Type, item.Certificate = ItemCertificate, DescribeCert(cert, now)
		case pemPrivateKey, pemECKey, pemRSAKey, pemEncrypted:
			ki, err := describeKey(b)
			if err != nil {
				return nil, fmt.Errorf("block %d (%s): %w", item.Index, b.Type, err)
			}
			item.Type, item.PrivateKey = ItemPrivateKey, ki
		default:
			item.Type = ItemOther
		}
		items = append(items, item)
	}
	if len(items) > 0 {
		return items, nil
	}
	return inspectDER(data, now)
}

// inspectDER reads data as DER certificates (what `openssl x509 -outform
// der` writes), since a file without PEM blocks is most often that.
func inspectDER(data []byte, now time.Time) ([]Item, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the input is empty", ErrParse)
	}
	if data[0] != 0x30 { // every DER certificate is a SEQUENCE
		return nil, fmt.Errorf("%w: no PEM block (-----BEGIN ...-----) and not a DER certificate", ErrParse)
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("%w: no PEM block, and not a DER certificate: %v", ErrParse, err)
	}
	items := make([]Item, len(certs))
	for i, c := range certs {
		items[i] = Item{Index: i + 1, Type: ItemCertificate, Certificate: DescribeCert(c, now)}
	}
	return items, nil
}

// DescribeCert describes cert as of now.
func DescribeCert(cert *x509.Certificate, now time.Time) *CertInfo {
	ci := &CertInfo{
		Subject:         cert.Subject.String(),
		Issuer:          cert.Issuer.String(),
		SelfSigned:      bytes.Equal(cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(cert) == nil,
		DNSNames:        append([]string{}, cert.DNSNames...),
		IPAddresses:     []string{},
		URIs:            []string{},
		IsCA:            cert.BasicConstraintsValid && cert.IsCA,
		KeyUsage:        keyUsages(cert.KeyUsage),
		ExtKeyUsage:     extKeyUsages(cert),
		NotBefore:       cert.NotBefore.UTC(),
		NotAfter:        cert.NotAfter.UTC(),
		Expired:         now.After(cert.NotAfter),
		SHA256:          fingerprint(cert.Raw),
		KeyAlgorithm:    keyAlgorithm(cert.PublicKey),
		PublicKeySHA256: fingerprint(cert.RawSubjectPublicKeyInfo),
		Warnings:        []string{},
		Kind:            KindNone,
	}
	if cert.SerialNumber != nil {
		ci.SerialNumber = fmt.Sprintf("%X", cert.SerialNumber)
	}
	if cert.PublicKey == nil {
		ci.KeyAlgorithm = cert.PublicKeyAlgorithm.String()
	}
	for _, ip := range cert.IPAddresses {
		ci.IPAddresses = append(ci.IPAddresses, ip.String())
	}
	for _, u := range cert.URIs {
		ci.URIs = append(ci.URIs, u.String())
	}
	ci.ExpiresIn = expiresIn(cert.NotAfter.Sub(now))
	id, idErr := SPIFFEIDOf(cert)
	if idErr == nil {
		ci.SPIFFEID, ci.TrustDomain = id.String(), id.TrustDomain().Name()
		ci.Kind, ci.Name = Classify(id, ci.IsCA)
	}
	if ci.Kind == KindNode && len(cert.Subject.OrganizationalUnit) == 1 {
		ci.Region = cert.Subject.OrganizationalUnit[0]
	}
	ci.Warnings = warnings(cert, ci, idErr, now)
	return ci
}

// warnings are the reasons a certificate would not work as what it looks
// meant for, so a foreign-issued certificate can be checked before use.
func warnings(cert *x509.Certificate, ci *CertInfo, idErr error, now time.Time) []string {
	w := []string{}
	switch {
	case ci.Expired:
		w = append(w, "expired on "+ci.NotAfter.Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		w = append(w, "not valid until "+ci.NotBefore.Format(time.RFC3339))
	}
	if idErr != nil {
		what := "holder"
		if ci.IsCA {
			what = "trust domain"
		}
		w = append(w, fmt.Sprintf("no SPIFFE ID (%v): Meridian cannot tell its %s", idErr, what))
	}
	switch ci.Kind {
	case KindNode:
		if len(cert.Subject.OrganizationalUnit) != 1 {
			w = append(w, fmt.Sprintf("no region: a node certificate carries its region as its one Subject OU (it has %d)", len(cert.Subject.OrganizationalUnit)))
		}
		for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if !hasEKU(cert, eku) {
				w = append(w, "a node certificate needs "+extKeyUsageName(eku)+": node-to-node traffic is mutual TLS")
			}
		}
		if len(cert.DNSNames) == 0 && len(cert.IPAddresses) == 0 {
			w = append(w, "no DNS or IP SAN: TLS clients that check the host name cannot verify this node")
		}
	case KindClient:
		if !hasEKU(cert, x509.ExtKeyUsageClientAuth) {
			w = append(w, "a client certificate needs clientAuth")
		}
	}
	if !ci.IsCA && cert.KeyUsage&x509.KeyUsageCertSign != 0 {
		w = append(w, "a leaf with keyCertSign: X509-SVID leaves may not sign certificates")
	}
	return w
}

func hasEKU(cert *x509.Certificate, want x509.ExtKeyUsage) bool {
	return slices.Contains(cert.ExtKeyUsage, want) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// describeKey says what kind of private key b holds. The key is parsed to
// name its algorithm and public key; only those leave this function.
func describeKey(b *pem.Block) (*KeyInfo, error) {
	ki := &KeyInfo{Format: keyFormat(b.Type)}
	if b.Type == pemEncrypted || b.Headers["Proc-Type"] != "" {
		ki.Encrypted = true
		return ki, nil
	}
	key, err := parseKeyBlock(b)
	if err != nil {
		return nil, err
	}
	pub, ok := publicOf(key)
	if !ok {
		ki.Algorithm = fmt.Sprintf("unknown (%T)", key)
		return ki, nil
	}
	ki.Algorithm = keyAlgorithm(pub)
	ki.PublicKeySHA256 = spkiFingerprint(pub)
	return ki, nil
}

func keyFormat(pemType string) string {
	switch pemType {
	case pemPrivateKey:
		return "PKCS#8"
	case pemEncrypted:
		return "PKCS#8 (encrypted)"
	case pemECKey:
		return "SEC 1"
	case pemRSAKey:
		return "PKCS#1"
	}
	return pemType
}

// expiresIn renders the time left: "89d 23h", "3h 12m", "42s", or
// "expired 2d 4h ago".
func expiresIn(d time.Duration) string {
	if d < 0 {
		return "expired " + roughDuration(-d) + " ago"
	}
	return roughDuration(d)
}

func roughDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= day:
		return fmt.Sprintf("%dd %dh", d/day, (d%day)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func keyUsages(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	out := []string{}
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func extKeyUsages(cert *x509.Certificate) []string {
	out := []string{}
	for _, u := range cert.ExtKeyUsage {
		out = append(out, extKeyUsageName(u))
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageAny:
		return "any"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageEmailProtection:
		return "emailProtection"
	case x509.ExtKeyUsageTimeStamping:
		return "timeStamping"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	}
	return fmt.Sprintf("extKeyUsage(%d)", int(u))
}
