package localcluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/meridiankms/meridian/identity"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/pki"
)

// TrustDomain is the trust domain of a TLS cluster's throwaway CA.
const TrustDomain = "localcluster.meridian.test"

// harnessCA is a TLS cluster's CA: made by New, its certificate in
// Dir/tls/ca.pem, its key only in memory (nothing outlives the test that
// could mint certificates for another run).
type harnessCA struct {
	ca  *pki.CA
	dir string
}

func newHarnessCA(dir string) (*harnessCA, error) {
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	ca, err := pki.CreateCA(pki.DefaultCAConfig(TrustDomain), key)
	if err != nil {
		return nil, err
	}
	h := &harnessCA{ca: ca, dir: filepath.Join(dir, "tls")}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	if err := pki.WriteFile(h.caFile(), ca.CertPEM(), pki.CertFileMode, false); err != nil {
		return nil, fmt.Errorf("localcluster: write CA: %w", err)
	}
	return h, nil
}

func (h *harnessCA) caFile() string { return pki.CAPaths(h.dir).Cert }

// CA is the cluster's CA (nil unless Options.TLS): tests issue more
// certificates with it (a client, a rotated node certificate).
func (c *Cluster) CA() *pki.CA {
	if c.tlsCA == nil {
		return nil
	}
	return c.tlsCA.ca
}

// CAFile is the CA bundle file every node of a TLS cluster trusts ("" unless
// Options.TLS).
func (c *Cluster) CAFile() string {
	if c.tlsCA == nil {
		return ""
	}
	return c.tlsCA.caFile()
}

// IssueNodeCert issues a node certificate for id in region (its SPIFFE
// node id, the region as OU, 127.0.0.1 as IP SAN) into the cluster's TLS
// directory, replacing the files of an earlier one atomically (a running
// node reloads them), and returns the node's TLS settings for it.
func (c *Cluster) IssueNodeCert(id, region string) (node.TLSConfig, error) {
	if c.tlsCA == nil {
		return node.TLSConfig{}, fmt.Errorf("localcluster: not a TLS cluster")
	}
	iss, err := c.tlsCA.ca.IssueNode(pki.NodeRequest{NodeID: id, Region: region, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return node.TLSConfig{}, fmt.Errorf("localcluster: issue node certificate %s: %w", id, err)
	}
	p, err := pki.WriteIssued(c.tlsCA.dir, iss, true)
	if err != nil {
		return node.TLSConfig{}, fmt.Errorf("localcluster: write node certificate %s: %w", id, err)
	}
	return node.TLSConfig{CertFile: p.Cert, KeyFile: p.Key, CAFile: c.tlsCA.caFile()}, nil
}

// ClientTLS is a client configuration for the cluster's API (nil, nil
// unless Options.TLS): a client certificate spiffe://TRUST-DOMAIN/client/name
// issued by the cluster's CA, nodes verified against it as the SDK does
// (identity's ClientAPI policy: any node of the trust domain).
func (c *Cluster) ClientTLS(name string) (*tls.Config, error) {
	if c.tlsCA == nil {
		return nil, nil
	}
	iss, err := c.tlsCA.ca.IssueClient(pki.ClientRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("localcluster: issue client certificate %s: %w", name, err)
	}
	p, err := pki.WriteIssued(c.tlsCA.dir, iss, true)
	if err != nil {
		return nil, fmt.Errorf("localcluster: write client certificate %s: %w", name, err)
	}
	src, err := identity.NewSource(identity.Config{CertFile: p.Cert, KeyFile: p.Key, CAFile: c.tlsCA.caFile()})
	if err != nil {
		return nil, fmt.Errorf("localcluster: client %s: %w", name, err)
	}
	return src.ClientConfig(identity.ClientPolicy{Plane: identity.ClientAPI})
}
