package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Path prefixes of the SPIFFE IDs Meridian issues.
const (
	nodeSegment   = "node"
	clientSegment = "client"
)

// maxNameLen bounds node ids, client names and regions: each becomes a
// Subject attribute, and X.520 caps CommonName and OrganizationalUnit at
// 64 characters (RFC 5280 ub-common-name, ub-organizational-unit-name).
const maxNameLen = 64

// maxTrustDomainLen is the SPIFFE limit on a trust domain name.
const maxTrustDomainLen = 255

// Validity bounds. A leaf may live at most 825 days because Apple
// platforms refuse TLS server certificates valid for longer, private CAs
// included; a CA's 100 years is far past any plan, so only a typo exceeds it.
const (
	DefaultCAValidity   = 3650 * 24 * time.Hour // 10 years
	DefaultLeafValidity = 90 * 24 * time.Hour
	MaxCAValidity       = 36500 * 24 * time.Hour
	MaxLeafValidity     = 825 * 24 * time.Hour
)

// ParseTrustDomain checks a trust domain name (example.org): lowercase
// letters, digits, dots, dashes and underscores, as the SPIFFE standard
// allows. A SPIFFE ID is refused rather than trimmed, so a path given by
// mistake is not silently dropped.
func ParseTrustDomain(name string) (spiffeid.TrustDomain, error) {
	switch {
	case name == "":
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: trust domain is empty", ErrInvalidInput)
	case strings.Contains(name, "://"):
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: trust domain %q: give the name alone (example.org), not a URI", ErrInvalidInput, name)
	case len(name) > maxTrustDomainLen:
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: trust domain is %d characters; at most %d", ErrInvalidInput, len(name), maxTrustDomainLen)
	}
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: trust domain %q: %v", ErrInvalidInput, name, err)
	}
	return td, nil
}

// checkSegment validates a node id or client name: one SPIFFE path segment
// (letters, digits, '.', '-', '_'; not "." or ".."), short enough for a
// CommonName. The same charset makes node-<id>.pem a safe file name.
func checkSegment(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidInput, what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%w: %s is %d characters; at most %d", ErrInvalidInput, what, len(s), maxNameLen)
	}
	if err := spiffeid.ValidatePathSegment(s); err != nil {
		return fmt.Errorf("%w: %s %q: %v", ErrInvalidInput, what, s, err)
	}
	return nil
}

// CheckNodeID validates a node id for a node certificate.
func CheckNodeID(id string) error { return checkSegment("node id", id) }

// CheckClientName validates a client name for a client certificate.
func CheckClientName(name string) error { return checkSegment("client name", name) }

// CheckRegion validates a region: letters, digits, '.', '-', '_', starting
// with a letter or digit. Commas, '=' and '+' would make the Subject's
// string form ambiguous, and control characters would make it unreadable.
func CheckRegion(region string) error {
	if region == "" {
		return fmt.Errorf("%w: region is empty", ErrInvalidInput)
	}
	if len(region) > maxNameLen {
		return fmt.Errorf("%w: region is %d characters; at most %d", ErrInvalidInput, len(region), maxNameLen)
	}
	for i := 0; i < len(region); i++ {
		c := region[i]
		if !isAlnum(c) && (i == 0 || (c != '.' && c != '-' && c != '_')) {
			return fmt.Errorf("%w: region %q: want letters, digits, '.', '-' and '_', starting with a letter or digit", ErrInvalidInput, region)
		}
	}
	return nil
}

// CheckDNSName validates a host name for a DNS SAN: labels of letters,
// digits and '-' (not at either end), at most 63 characters each and 253
// in all; the leftmost label may be "*", which Go and browsers match
// against exactly one label.
func CheckDNSName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: DNS name %q: %s", ErrInvalidInput, name, why)
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: DNS name is empty", ErrInvalidInput)
	case net.ParseIP(name) != nil:
		return bad("an IP address is not a DNS name; give it as an IP SAN")
	case len(name) > 253:
		return bad("longer than 253 characters")
	case strings.HasSuffix(name, "."):
		return bad("drop the trailing dot: certificates hold names without it")
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 && strings.Contains(name, ".") {
			continue
		}
		if label == "" || len(label) > 63 {
			return bad("each dot-separated label must be 1 to 63 characters")
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if c == '*' {
				return bad("a wildcard may only be the whole leftmost label (*.example.org)")
			}
			if !isAlnum(c) && (c != '-' || j == 0 || j == len(label)-1) {
				return bad("labels hold letters, digits and '-', and do not start or end with '-'")
			}
		}
	}
	return nil
}

// ParseIPs parses IP SANs, refusing the unspecified addresses (0.0.0.0,
// ::): a node is never dialled at them, so such a SAN only hides a mistake.
func ParseIPs(ss []string) ([]net.IP, error) {
	out := make([]net.IP, 0, len(ss))
	for _, s := range ss {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return nil, fmt.Errorf("%w: IP address %q: not an IPv4 or IPv6 address", ErrInvalidInput, s)
		}
		if err := checkIP(ip); err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, nil
}

func checkIP(ip net.IP) error {
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return fmt.Errorf("%w: IP address of %d bytes", ErrInvalidInput, len(ip))
	}
	if ip.IsUnspecified() {
		return fmt.Errorf("%w: IP address %s is unspecified (any address); give the address peers dial", ErrInvalidInput, ip)
	}
	return nil
}

// checkValidity resolves a requested validity (0: def) and checks it is
// within (0, max].
func checkValidity(what string, v, def, max time.Duration) (time.Duration, error) {
	if v == 0 {
		return def, nil
	}
	if v < 0 {
		return 0, fmt.Errorf("%w: %s validity %v is negative", ErrInvalidInput, what, v)
	}
	if v > max {
		return 0, fmt.Errorf("%w: %s validity of %s is over the maximum of %s", ErrInvalidInput, what, days(v), days(max))
	}
	return v, nil
}

// days renders a duration in days when it is whole days (validities are
// given in days on the command line).
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// NodeID is the SPIFFE ID of node id in td.
func NodeID(td spiffeid.TrustDomain, id string) (spiffeid.ID, error) {
	if err := CheckNodeID(id); err != nil {
		return spiffeid.ID{}, err
	}
	return spiffeid.FromSegments(td, nodeSegment, id)
}

// ClientID is the SPIFFE ID of client name in td.
func ClientID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	if err := CheckClientName(name); err != nil {
		return spiffeid.ID{}, err
	}
	return spiffeid.FromSegments(td, clientSegment, name)
}

// Kind is what a certificate's SPIFFE ID says its holder is.
type Kind string

const (
	KindCA     Kind = "ca"     // spiffe://td on a CA certificate
	KindNode   Kind = "node"   // spiffe://td/node/<id>
	KindClient Kind = "client" // spiffe://td/client/<name>
	KindOther  Kind = "other"  // any other SPIFFE ID (a foreign CA's workload, say)
	KindNone   Kind = "none"   // no SPIFFE ID: zero or several URI SANs, or not spiffe://
)

// Classify reads the kind and name (node id, client name) from a SPIFFE
// ID; isCA tells a CA's bare trust-domain ID from a leaf's.
func Classify(id spiffeid.ID, isCA bool) (Kind, string) {
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	switch {
	case id.Path() == "" && isCA:
		return KindCA, ""
	case isCA:
		return KindOther, ""
	case len(segs) == 2 && segs[0] == nodeSegment:
		return KindNode, segs[1]
	case len(segs) == 2 && segs[0] == clientSegment:
		return KindClient, segs[1]
	}
	return KindOther, ""
}

// SPIFFEIDOf returns a certificate's SPIFFE ID: its URI SAN when it has
// exactly one and that is a valid spiffe:// ID (the X509-SVID rule). The
// error says why there is none.
func SPIFFEIDOf(cert *x509.Certificate) (spiffeid.ID, error) {
	switch n := len(cert.URIs); {
	case n == 0:
		return spiffeid.ID{}, errors.New("no URI SAN")
	case n > 1:
		return spiffeid.ID{}, fmt.Errorf("%d URI SANs; an X509-SVID has exactly one", n)
	}
	id, err := spiffeid.FromURI(cert.URIs[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("URI SAN %q is not a SPIFFE ID: %v", cert.URIs[0].String(), err)
	}
	return id, nil
}
