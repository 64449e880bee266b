package pki

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY" // PKCS#8, what we write
	pemECKey       = "EC PRIVATE KEY"
	pemRSAKey      = "RSA PRIVATE KEY"
	pemEncrypted   = "ENCRYPTED PRIVATE KEY"
)

// GenerateKey makes a fresh ECDSA P-256 key, the algorithm of every key
// this package creates: every TLS 1.3 stack supports it and its signatures
// are cheap, which matters for handshakes on the data plane.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return k, nil
}

// EncodeCertPEM is cert as a CERTIFICATE PEM block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw})
}

// EncodeKeyPEM is key as a PKCS#8 "PRIVATE KEY" PEM block, the one form
// every TLS library reads whatever the algorithm.
func EncodeKeyPEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key as PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// parseKeyBlock parses a private key PEM block in any of the forms openssl
// and Go write (PKCS#8, SEC 1, PKCS#1). Its errors never quote the block.
func parseKeyBlock(b *pem.Block) (crypto.PrivateKey, error) {
	if b.Headers["Proc-Type"] != "" || b.Type == pemEncrypted {
		return nil, fmt.Errorf("%w: the private key is encrypted; decrypt it first (openssl pkey -in FILE)", ErrParse)
	}
	var key crypto.PrivateKey
	var err error
	switch b.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case pemRSAKey:
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrParse, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s block: %v", ErrParse, b.Type, err)
	}
	return key, nil
}

// keyAlgorithm names a public key's algorithm and size ("ECDSA P-256").
func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return fmt.Sprintf("ECDH %v", k.Curve())
	}
	return fmt.Sprintf("unknown (%T)", pub)
}

// publicOf returns a private key's public half.
func publicOf(key crypto.PrivateKey) (crypto.PublicKey, bool) {
	s, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return nil, false
	}
	return s.Public(), true
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// subjectKeyID is RFC 7093 method 1: the leftmost 160 bits of the SHA-256
// of the subjectPublicKey bits. Set explicitly so a CA's identifier does not
// depend on which Go release made it (Go moved from SHA-1 to this in 1.25).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// spkiFingerprint is the SHA-256 of a public key's DER SubjectPublicKeyInfo,
// printed for certificates and keys alike so an operator can tell which key
// belongs to which certificate without the key ever being shown.
func spkiFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return fingerprint(der)
}

// fingerprint is SHA-256 in openssl's spelling (AB:CD:...), so it can be
// compared with `openssl x509 -fingerprint -sha256`.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	const hexdigits = "0123456789ABCDEF"
	out := make([]byte, 0, len(sum)*3-1)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexdigits[b>>4], hexdigits[b&0xf])
	}
	return string(out)
}

// serialLimit bounds serial numbers to 128 bits: unpredictable (CA/B
// Forum asks for at least 64 random bits) and within RFC 5280's 20 octets.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// randomSerial is a positive 128-bit random serial number.
func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 { // RFC 5280: positive
			return n, nil
		}
	}
}
