package identity

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Kind says what sort of caller a Principal is. Kind alone never grants
// anything: a node of another cluster is also KindNode, so whoever decides
// compares the trust domain too (the cluster-plane policy does; the client
// API's refuses node identities of another trust domain at the handshake).
type Kind uint8

const (
	// KindAnonymous: no identity was proven (no client certificate).
	KindAnonymous Kind = iota
	// KindNode: spiffe://<td>/node/<id>, a Meridian node.
	KindNode
	// KindClient: spiffe://<td>/client/<name>, a caller issued by Meridian's
	// own PKI (`meridian tls cert create --client`).
	KindClient
	// KindWorkload: any other SPIFFE ID, e.g. one a company's own CA issues.
	KindWorkload
)

func (k Kind) String() string {
	switch k {
	case KindAnonymous:
		return "anonymous"
	case KindNode:
		return "node"
	case KindClient:
		return "client"
	case KindWorkload:
		return "workload"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// AuthMethod says how a Principal was authenticated. Access keys (the
// AWS-compatible API) and unix peer credentials (the KMS plugin socket) will
// add their own methods here; everything downstream (authorization, audit)
// reads the Principal and never the transport.
type AuthMethod uint8

const (
	// AuthNone: nothing was proven; the Principal is anonymous.
	AuthNone AuthMethod = iota
	// AuthMTLS: a client certificate verified against the CA bundle during
	// the TLS handshake.
	AuthMTLS
)

func (m AuthMethod) String() string {
	switch m {
	case AuthNone:
		return "none"
	case AuthMTLS:
		return "mtls"
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// Reserved first path segments of Meridian's own identities.
const (
	nodeSegment   = "node"
	clientSegment = "client"
)

// maxRegionLen bounds a region read from a certificate; region names are
// short (us-east-1) and the value ends up in logs and metrics labels. It
// is X.520's bound on an OrganizationalUnit, the same as pki's, so every
// region `meridian tls cert create` accepts is read back here.
const maxRegionLen = 64

// Principal is who a caller is, as proven by its transport. The zero value
// is the anonymous principal. Principals are comparable with ==.
type Principal struct {
	// ID is the caller's SPIFFE ID; zero for anonymous callers.
	ID spiffeid.ID
	// Kind classifies ID (see Kind).
	Kind Kind
	// Name is the node id (KindNode) or client name (KindClient); empty
	// otherwise (a workload is named by its whole ID).
	Name string
	// Region is a node's region as its certificate states it (the Subject's
	// single OrganizationalUnit); empty when the certificate states none, and
	// always empty for non-nodes. It is a claim signed by the CA, useful in
	// logs and audit; placement still trusts the cluster's membership.
	Region string
	// Method says how the identity was proven.
	Method AuthMethod
}

// TrustDomain is the trust domain of the caller's SPIFFE ID (zero for
// anonymous callers).
func (p Principal) TrustDomain() spiffeid.TrustDomain { return p.ID.TrustDomain() }

// IsAnonymous reports whether nothing was proven about the caller.
func (p Principal) IsAnonymous() bool { return p.ID.IsZero() }

// IsNodeOf reports whether p is a node of trust domain td: the check every
// node-only path makes (Kind alone would admit another cluster's nodes).
func (p Principal) IsNodeOf(td spiffeid.TrustDomain) bool {
	return p.Kind == KindNode && !td.IsZero() && p.ID.MemberOf(td)
}

// String is safe for logs: it holds no secret, and any field that did not
// come through FromCertificate's validation is quoted, so a crafted value
// cannot forge log lines.
func (p Principal) String() string {
	if p.IsAnonymous() {
		return "anonymous"
	}
	var b strings.Builder
	b.WriteString(p.Kind.String())
	if p.Name != "" {
		b.WriteString(" " + logSafe(p.Name))
	}
	b.WriteString(" (" + logSafe(p.ID.String()))
	if p.Region != "" {
		b.WriteString(", region " + logSafe(p.Region))
	}
	b.WriteString(", " + p.Method.String() + ")")
	return b.String()
}

// LogValue makes slog record a Principal as a group of plain fields rather
// than one string, so log queries can select on kind or trust domain.
func (p Principal) LogValue() slog.Value {
	if p.IsAnonymous() {
		return slog.GroupValue(slog.String("kind", KindAnonymous.String()))
	}
	attrs := []slog.Attr{
		slog.String("id", p.ID.String()),
		slog.String("kind", p.Kind.String()),
		slog.String("method", p.Method.String()),
	}
	if p.Region != "" {
		attrs = append(attrs, slog.String("region", p.Region))
	}
	return slog.GroupValue(attrs...)
}

var _ slog.LogValuer = Principal{}

// logSafe returns s unchanged when it is plain ASCII without control
// characters, and quoted otherwise.
func logSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// FromCertificate reads the identity a certificate states. It does not
// verify the certificate (the TLS handshake does that); it applies the
// X509-SVID rules (exactly one URI SAN, a SPIFFE ID with a path, not a CA)
// and Meridian's: IDs under /node/ and /client/ must be exactly
// /node/<id> and /client/<name>, and a node's region, when its Subject has
// a single OrganizationalUnit, must be a plain region name.
func FromCertificate(cert *x509.Certificate) (Principal, error) {
	if cert == nil {
		return Principal{}, fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	if len(cert.URIs) == 0 {
		return Principal{}, fmt.Errorf("%w: certificate %s has no URI SAN", ErrNoIdentity, describeCert(cert))
	}
	// x509svid applies the SVID rule (exactly one URI SAN) and the SPIFFE ID
	// grammar, so both follow the spec rather than our reading of it.
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: certificate %s: %v", ErrInvalidIdentity, describeCert(cert), err)
	}
	if cert.IsCA {
		return Principal{}, fmt.Errorf("%w: %s is a CA certificate, which names no caller", ErrInvalidIdentity, id)
	}
	if id.Path() == "" {
		return Principal{}, fmt.Errorf("%w: %s names a trust domain, not a caller", ErrInvalidIdentity, id)
	}
	p := Principal{ID: id, Kind: KindWorkload, Method: AuthMTLS}
	segments := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	switch segments[0] {
	case nodeSegment, clientSegment:
		if len(segments) != 2 {
			return Principal{}, fmt.Errorf("%w: %s: want /%s/<name> with a single name segment", ErrInvalidIdentity, id, segments[0])
		}
		p.Name = segments[1]
		p.Kind = KindClient
		if segments[0] == nodeSegment {
			p.Kind = KindNode
			if p.Region, err = regionOf(cert); err != nil {
				return Principal{}, fmt.Errorf("%w: %s: %v", ErrInvalidIdentity, id, err)
			}
		}
	}
	return p, nil
}

// regionOf reads a node's region from its Subject OrganizationalUnit. Only a
// single OU is read as the region: with several, which one is the region
// would be a guess, and a wrong region is worse than none.
func regionOf(cert *x509.Certificate) (string, error) {
	if len(cert.Subject.OrganizationalUnit) != 1 {
		return "", nil
	}
	r := cert.Subject.OrganizationalUnit[0]
	if r == "" || len(r) > maxRegionLen {
		return "", fmt.Errorf("region (subject OU) must be 1-%d characters", maxRegionLen)
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", fmt.Errorf("region (subject OU) %q: only letters, digits, '-', '_' and '.' are allowed", r)
		}
	}
	return r, nil
}

// describeCert names a certificate in an error without trusting its content
// to be printable: the subject is quoted and the serial is a number.
func describeCert(cert *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", cert.Subject.String(), cert.SerialNumber)
}
