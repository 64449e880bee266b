package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// verifyChain verifies certs (leaf first) against pool for usage, as the
// TLS stack would, and turns x509's errors into ours: an expired
// certificate says "expired" and when; an unknown CA says so.
//
// go-spiffe's x509svid.Verify does the same walk but with ExtKeyUsageAny,
// which would let a client certificate serve as a server's; hence
// crypto/x509 directly.
func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err == nil {
		return chains, nil
	}
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if verr := checkValidity(invalid.Cert, now); verr != nil {
			return nil, verr
		}
		return nil, fmt.Errorf("%s: %w: %v", certName(leaf), ErrExpired, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return nil, fmt.Errorf("%w: %s lacks the %s extended key usage", ErrUntrusted, certName(leaf), usageName(usage))
	case errors.As(err, &unknown):
		return nil, fmt.Errorf("%w: %s is not signed by a CA of the bundle", ErrUntrusted, certName(leaf))
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrUntrusted, certName(leaf), err)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	}
	return fmt.Sprintf("%d", u)
}

// checkCAScope enforces the trust domain a CA names: a CA certificate with
// a spiffe://<td> URI SAN vouches only for identities in <td>, so one
// bundle can hold the cluster CA and, say, a company CA for its own
// workloads without either issuing the other's identities. A CA naming no
// trust domain vouches for any (scope such a CA with URI name constraints,
// which crypto/x509 enforces). The identity passes if any verified chain
// allows it.
func checkCAScope(chains [][]*x509.Certificate, id spiffeid.ID) error {
	for _, chain := range chains {
		if chainAllows(chain, id.TrustDomain()) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s: its CA is scoped to another trust domain", ErrUntrusted, id)
}

func chainAllows(chain []*x509.Certificate, td spiffeid.TrustDomain) bool {
	for _, ca := range chain[1:] {
		hasSPIFFE := false
		for _, u := range ca.URIs {
			hasSPIFFE = hasSPIFFE || u.Scheme == "spiffe"
		}
		if !hasSPIFFE {
			continue
		}
		// A CA whose SPIFFE naming we cannot read vouches for nothing.
		if catd, ok := caTrustDomain(ca); !ok || catd != td {
			return false
		}
	}
	return true
}
