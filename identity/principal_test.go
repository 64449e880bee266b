package identity

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestFromCertificate(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString(testTD)
	tests := []struct {
		name    string
		uris    []string
		ou      []string
		isCA    bool
		want    Principal
		wantErr error
	}{
		{name: "node with region", uris: []string{"spiffe://meridian.test/node/n1"}, ou: []string{"eu-west-1"},
			want: Principal{ID: spiffeid.RequireFromPath(td, "/node/n1"), Kind: KindNode, Name: "n1", Region: "eu-west-1", Method: AuthMTLS}},
		{name: "node without region", uris: []string{"spiffe://meridian.test/node/n1"},
			want: Principal{ID: spiffeid.RequireFromPath(td, "/node/n1"), Kind: KindNode, Name: "n1", Method: AuthMTLS}},
		{name: "node with two OUs has no region", uris: []string{"spiffe://meridian.test/node/n1"}, ou: []string{"a", "b"},
			want: Principal{ID: spiffeid.RequireFromPath(td, "/node/n1"), Kind: KindNode, Name: "n1", Method: AuthMTLS}},
		{name: "client", uris: []string{"spiffe://meridian.test/client/alice"}, ou: []string{"ignored"},
			want: Principal{ID: spiffeid.RequireFromPath(td, "/client/alice"), Kind: KindClient, Name: "alice", Method: AuthMTLS}},
		{name: "workload of a company CA", uris: []string{"spiffe://corp.example/ns/pay/sa/api"},
			want: Principal{ID: spiffeid.RequireFromString("spiffe://corp.example/ns/pay/sa/api"), Kind: KindWorkload, Method: AuthMTLS}},
		{name: "nodes path is just a workload", uris: []string{"spiffe://meridian.test/nodes/n1"},
			want: Principal{ID: spiffeid.RequireFromString("spiffe://meridian.test/nodes/n1"), Kind: KindWorkload, Method: AuthMTLS}},
		{name: "no URI SAN", wantErr: ErrNoIdentity},
		{name: "two URI SANs", uris: []string{"spiffe://meridian.test/node/n1", "spiffe://meridian.test/node/n2"}, wantErr: ErrInvalidIdentity},
		{name: "https URI", uris: []string{"https://meridian.test/node/n1"}, wantErr: ErrInvalidIdentity},
		{name: "bad path characters", uris: []string{"spiffe://meridian.test/node/n%201"}, wantErr: ErrInvalidIdentity},
		{name: "trust domain only", uris: []string{"spiffe://meridian.test"}, wantErr: ErrInvalidIdentity},
		{name: "node with two segments", uris: []string{"spiffe://meridian.test/node/a/b"}, wantErr: ErrInvalidIdentity},
		{name: "bare node", uris: []string{"spiffe://meridian.test/node"}, wantErr: ErrInvalidIdentity},
		{name: "client with two segments", uris: []string{"spiffe://meridian.test/client/a/b"}, wantErr: ErrInvalidIdentity},
		{name: "CA certificate", uris: []string{"spiffe://meridian.test/node/n1"}, isCA: true, wantErr: ErrInvalidIdentity},
		{name: "region with a newline", uris: []string{"spiffe://meridian.test/node/n1"}, ou: []string{"eu\nFAKE log line"}, wantErr: ErrInvalidIdentity},
		{name: "empty region", uris: []string{"spiffe://meridian.test/node/n1"}, ou: []string{""}, wantErr: ErrInvalidIdentity},
		{name: "long region", uris: []string{"spiffe://meridian.test/node/n1"}, ou: []string{strings.Repeat("r", maxRegionLen+1)}, wantErr: ErrInvalidIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := &x509.Certificate{URIs: parseURIs(t, tc.uris), Subject: pkix.Name{OrganizationalUnit: tc.ou}, IsCA: tc.isCA}
			got, err := FromCertificate(cert)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("FromCertificate = %v, %v; want error %v", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q has a raw newline", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FromCertificate = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestFromCertificateNil(t *testing.T) {
	if _, err := FromCertificate(nil); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("FromCertificate(nil) = %v, want ErrNoIdentity", err)
	}
}

func TestPrincipalString(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString(testTD)
	tests := []struct {
		p    Principal
		want string
	}{
		{Principal{}, "anonymous"},
		{Principal{ID: spiffeid.RequireFromPath(td, "/node/n1"), Kind: KindNode, Name: "n1", Region: "eu", Method: AuthMTLS},
			"node n1 (spiffe://meridian.test/node/n1, region eu, mtls)"},
		{Principal{ID: spiffeid.RequireFromPath(td, "/client/bob"), Kind: KindClient, Name: "bob", Method: AuthMTLS},
			"client bob (spiffe://meridian.test/client/bob, mtls)"},
		{Principal{ID: spiffeid.RequireFromString("spiffe://corp.example/x"), Kind: KindWorkload, Method: AuthMTLS},
			"workload (spiffe://corp.example/x, mtls)"},
		// Built by hand, not by FromCertificate: still one safe line.
		{Principal{ID: spiffeid.RequireFromPath(td, "/client/x"), Kind: KindClient, Name: "x\ny", Region: "a\"b", Method: AuthMTLS},
			`client "x\ny" (spiffe://meridian.test/client/x, region "a\"b", mtls)`},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestIsNodeOf(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString(testTD)
	other := spiffeid.RequireTrustDomainFromString("other.test")
	node := Principal{ID: spiffeid.RequireFromPath(td, "/node/n1"), Kind: KindNode, Name: "n1"}
	client := Principal{ID: spiffeid.RequireFromPath(td, "/client/c"), Kind: KindClient, Name: "c"}
	switch {
	case !node.IsNodeOf(td):
		t.Error("node of td is not IsNodeOf(td)")
	case node.IsNodeOf(other):
		t.Error("node of td IsNodeOf(other)")
	case node.IsNodeOf(spiffeid.TrustDomain{}):
		t.Error("node IsNodeOf(zero trust domain)")
	case client.IsNodeOf(td):
		t.Error("client IsNodeOf(td)")
	case (Principal{}).IsNodeOf(td):
		t.Error("anonymous IsNodeOf(td)")
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := FromContext(ctx); ok {
		t.Fatal("FromContext of a bare context: ok")
	}
	p := Principal{ID: spiffeid.RequireFromString("spiffe://meridian.test/client/c"), Kind: KindClient, Name: "c", Method: AuthMTLS}
	got, ok := FromContext(NewContext(ctx, p))
	if !ok || got != p {
		t.Fatalf("FromContext = %v, %v; want %v", got, ok, p)
	}
	// Anonymous is a Principal like any other: present, and anonymous.
	got, ok = FromContext(NewContext(ctx, Principal{}))
	if !ok || !got.IsAnonymous() {
		t.Fatalf("FromContext(anonymous) = %v, %v", got, ok)
	}
}

func TestFromPeerWithoutPeer(t *testing.T) {
	if _, err := FromPeer(context.Background()); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("FromPeer without peer = %v, want ErrNoPeer", err)
	}
}
