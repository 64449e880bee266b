package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/pki"
)

func newTLSCmd() *cobra.Command {
	c := groupCmd(&cobra.Command{
		Use:   "tls",
		Short: "Create the cluster's CA and certificates, and inspect certificate files",
		Long: `A certificate authority for the cluster that needs no other tool: create the
CA once, issue a certificate to every node and every client, and inspect any
certificate or key file in Meridian's terms. docs/PKI.md describes the
certificates and how to bring your own CA instead.

Every certificate names its holder with one SPIFFE ID URI SAN:
spiffe://TRUST-DOMAIN/node/ID for nodes (the region in the Subject OU) and
spiffe://TRUST-DOMAIN/client/NAME for clients. Keys are ECDSA P-256, written
as PKCS#8 PEM with mode 0600; certificates are written with mode 0644.
Existing files are never replaced without --force.

The server does not use these certificates yet: TLS on the listeners comes
in a later change.`,
		Example: `  meridian tls ca create --trust-domain meridian.example --out-dir /secure/ca
  meridian tls cert create --ca-dir /secure/ca --node n1 --region eu-west \
    --dns n1.meridian.example --ip 10.0.1.5 --out-dir ./n1
  meridian tls cert create --ca-dir /secure/ca --client alice
  meridian tls inspect ./n1/node-n1.pem`,
	})
	ca := groupCmd(&cobra.Command{
		Use:     "ca",
		Short:   "Create the cluster's certificate authority",
		Long:    "Create the cluster's certificate authority (ca.pem and ca-key.pem).",
		Example: "  meridian tls ca create --trust-domain meridian.example --out-dir /secure/ca",
	})
	ca.AddCommand(newTLSCACreateCmd())
	cert := groupCmd(&cobra.Command{
		Use:     "cert",
		Short:   "Issue node and client certificates from the cluster CA",
		Long:    "Issue node and client certificates from the cluster CA made by \"meridian tls ca create\".",
		Example: "  meridian tls cert create --ca-dir /secure/ca --node n1 --region eu-west --dns n1.meridian.example",
	})
	cert.AddCommand(newTLSCertCreateCmd())
	c.AddCommand(ca, cert, newTLSInspectCmd())
	return c
}

func newTLSCACreateCmd() *cobra.Command {
	o := &clientOptions{output: outputText}
	var trustDomain, outDir string
	var daysFlag int
	var force bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create the cluster CA: ca.pem and ca-key.pem",
		Long: `Create an ECDSA P-256 certificate authority for the cluster's trust domain
and write, into --out-dir (made with mode 0700 if missing):

  ca.pem      the CA certificate (mode 0644): every node and client trusts it
  ca-key.pem  its private key (mode 0600): it signs every certificate

The trust domain (lowercase letters, digits, '.', '-', '_'; usually a DNS
name you own) is the CA's own URI SAN, spiffe://TRUST-DOMAIN, so every
certificate issued from it lands in that trust domain without it being
given again. The CA may sign only leaf certificates (path length 0).

Keep ca-key.pem off the nodes: whoever holds it can mint node certificates.
An existing ca.pem or ca-key.pem is refused unless --force, because a new
CA key strands every certificate the old one issued.`,
		Example: `  meridian tls ca create --trust-domain meridian.example --out-dir /secure/ca
  meridian tls ca create --trust-domain meridian.example --out-dir ./ca --days 1825 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFromEnv(cmd, o); err != nil {
				return err
			}
			if trustDomain == "" {
				return usageErrorf("--trust-domain is required (the SPIFFE trust domain, e.g. meridian.example)")
			}
			if outDir == "" {
				return usageErrorf("--out-dir is required: say where the CA key goes")
			}
			validity, err := daysValidity(daysFlag, pki.MaxCAValidity, "a CA")
			if err != nil {
				return err
			}
			cfg := pki.CAConfig{TrustDomain: trustDomain, Validity: validity}
			if err := cfg.Validate(); err != nil {
				return pkiError(err)
			}
			key, err := pki.GenerateKey()
			if err != nil {
				return err
			}
			ca, err := pki.CreateCA(cfg, key)
			if err != nil {
				return pkiError(err)
			}
			paths, err := pki.WriteCA(outDir, ca, key, force)
			if err != nil {
				return pkiError(err)
			}
			c := ca.Certificate()
			out := createdOutput{
				SPIFFEID: c.URIs[0].String(), TrustDomain: ca.TrustDomain().Name(),
				NotAfter: c.NotAfter.UTC().Format(time.RFC3339), SHA256: pki.DescribeCert(c, time.Now()).SHA256,
				Paths: paths,
			}
			return emit(cmd, o, rawOut{}, out.result())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&trustDomain, "trust-domain", "", "the SPIFFE trust `DOMAIN` the CA issues for, e.g. meridian.example")
	fs.StringVar(&outDir, "out-dir", "", "write ca.pem and ca-key.pem into `DIR`")
	fs.IntVar(&daysFlag, "days", int(pki.DefaultCAValidity/(24*time.Hour)), "how many `DAYS` the CA is valid")
	fs.BoolVar(&force, "force", false, "replace an existing ca.pem and ca-key.pem (strands every certificate the old CA issued)")
	addOutputFlag(fs, &o.output)
	return cmd
}

// certFlags are the inputs of `tls cert create`.
type certFlags struct {
	caDir, outDir string
	node, region  string
	client        string
	dns, ips      []string
	days          int
	force         bool
}

func newTLSCertCreateCmd() *cobra.Command {
	o := &clientOptions{output: outputText}
	f := &certFlags{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Issue a node or client certificate from the cluster CA",
		Long: `Issue a certificate and a fresh ECDSA P-256 key from the CA in --ca-dir
(ca.pem and ca-key.pem, as "meridian tls ca create" wrote them), and write
them into --out-dir (default: the current directory):

  --node ID --region R  node-ID.pem and node-ID-key.pem: SPIFFE ID
                        spiffe://TRUST-DOMAIN/node/ID, region R as the
                        Subject OU, usable as TLS server and client (nodes
                        talk to each other over mutual TLS)
  --client NAME         client-NAME.pem and client-NAME-key.pem: SPIFFE ID
                        spiffe://TRUST-DOMAIN/client/NAME, TLS client only

Node ids and client names are letters, digits, '.', '-' and '_' (one SPIFFE
path segment, at most 64 characters). Give a node every name it is dialled
by with --dns and --ip (repeat them or separate with commas): TLS clients
that check host names need one to match. Keys are written with mode 0600,
certificates 0644; existing files are refused unless --force. A node needs
ca.pem too, to verify its peers; it never needs ca-key.pem.

The command prints the certificate's identity and the paths it wrote,
never the key.`,
		Example: `  meridian tls cert create --ca-dir /secure/ca --node n1 --region eu-west \
    --dns n1.meridian.example,localhost --ip 10.0.1.5 --ip 127.0.0.1 --out-dir ./n1
  meridian tls cert create --ca-dir /secure/ca --client alice --days 30
  meridian tls cert create --ca-dir /secure/ca --node n1 --region eu-west --force   # renew`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFromEnv(cmd, o); err != nil {
				return err
			}
			return runCertCreate(cmd, o, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.caDir, "ca-dir", "", "the `DIR` holding ca.pem and ca-key.pem")
	fs.StringVar(&f.node, "node", "", "issue a node certificate for node `ID`")
	fs.StringVar(&f.region, "region", "", "the node's `REGION` (required with --node)")
	fs.StringVar(&f.client, "client", "", "issue a client certificate for `NAME`")
	fs.StringSliceVar(&f.dns, "dns", nil, "a DNS `NAME` the node is reached by (repeatable; --node only)")
	fs.StringSliceVar(&f.ips, "ip", nil, "an IP `ADDRESS` the node is reached by (repeatable; --node only)")
	fs.IntVar(&f.days, "days", int(pki.DefaultLeafValidity/(24*time.Hour)), "how many `DAYS` the certificate is valid (at most 825, and not past the CA's expiry)")
	fs.StringVar(&f.outDir, "out-dir", ".", "write the certificate and key into `DIR`")
	fs.BoolVar(&f.force, "force", false, "replace existing files (renewing a certificate)")
	addOutputFlag(fs, &o.output)
	return cmd
}

func runCertCreate(cmd *cobra.Command, o *clientOptions, f *certFlags) error {
	if f.caDir == "" {
		return usageErrorf("--ca-dir is required: the directory holding ca.pem and ca-key.pem")
	}
	switch {
	case f.node == "" && f.client == "":
		return usageErrorf("say what to issue: --node ID --region REGION, or --client NAME")
	case f.node != "" && f.client != "":
		return usageErrorf("give --node or --client, not both: a certificate names one holder")
	case f.client != "" && (f.region != "" || len(f.dns) > 0 || len(f.ips) > 0):
		return usageErrorf("--region, --dns and --ip are for node certificates; a client certificate carries only its name")
	case f.node != "" && f.region == "":
		return usageErrorf("--node needs --region: a node certificate records its node's region")
	}
	if f.outDir == "" {
		return usageErrorf("--out-dir is empty; give a directory (\".\" for the current one)")
	}
	validity, err := daysValidity(f.days, pki.MaxLeafValidity, "a certificate")
	if err != nil {
		return err
	}
	issue, err := certRequest(f, validity)
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(pki.CAPaths(f.caDir).Cert, pki.CAPaths(f.caDir).Key)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load the CA from %s: %w (create one with \"meridian tls ca create\")", f.caDir, err)
	}
	if err != nil {
		return fmt.Errorf("load the CA from %s: %w", f.caDir, err)
	}
	iss, err := issue(ca)
	if err != nil {
		return pkiError(err)
	}
	paths, err := pki.WriteIssued(f.outDir, iss, f.force)
	if err != nil {
		return pkiError(err)
	}
	if iss.Kind == pki.KindNode && len(iss.Cert.DNSNames)+len(iss.Cert.IPAddresses) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: no --dns or --ip: TLS clients that check the host name cannot verify this node; only peers that verify its SPIFFE ID can")
	}
	info := pki.DescribeCert(iss.Cert, time.Now())
	out := createdOutput{
		SPIFFEID: info.SPIFFEID, Kind: string(info.Kind), Name: info.Name, Region: info.Region,
		DNSNames: info.DNSNames, IPAddresses: info.IPAddresses,
		NotAfter: info.NotAfter.Format(time.RFC3339), SHA256: info.SHA256, Paths: paths,
	}
	return emit(cmd, o, rawOut{}, out.result())
}

// certRequest validates the flags into the issuing call, before the CA is
// read, so a bad flag is a usage error whatever state the CA files are in.
func certRequest(f *certFlags, validity time.Duration) (func(*pki.CA) (*pki.Issued, error), error) {
	if f.client != "" {
		req := pki.ClientRequest{Name: f.client, Validity: validity}
		if err := req.Validate(); err != nil {
			return nil, pkiError(err)
		}
		return func(ca *pki.CA) (*pki.Issued, error) { return ca.IssueClient(req) }, nil
	}
	ips, err := pki.ParseIPs(f.ips)
	if err != nil {
		return nil, pkiError(err)
	}
	var dns []string
	for _, d := range f.dns {
		dns = append(dns, strings.TrimSpace(d))
	}
	req := pki.NodeRequest{NodeID: f.node, Region: f.region, DNSNames: dns, IPs: ips, Validity: validity}
	if err := req.Validate(); err != nil {
		return nil, pkiError(err)
	}
	return func(ca *pki.CA) (*pki.Issued, error) { return ca.IssueNode(req) }, nil
}

// daysValidity checks --days against 1..max and returns it as a duration.
func daysValidity(days int, max time.Duration, what string) (time.Duration, error) {
	maxDays := int(max / (24 * time.Hour))
	if days < 1 || days > maxDays {
		return 0, usageErrorf("--days %d: %s is valid for 1 to %d days", days, what, maxDays)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// pkiError turns the pki package's verdicts into the CLI's: a bad input is
// a usage error (exit 2); an existing file says how to replace it.
func pkiError(err error) error {
	switch {
	case errors.Is(err, pki.ErrInvalidInput):
		return usageError{err}
	case errors.Is(err, pki.ErrExists):
		return fmt.Errorf("%w; pass --force to replace it", err)
	}
	return err
}

// outputFromEnv applies MERIDIAN_OUTPUT when -o was not given, as the
// client commands do, so a script that sets it gets JSON from these too.
func outputFromEnv(cmd *cobra.Command, o *clientOptions) error {
	if cmd.Flags().Changed("output") {
		return nil
	}
	name := envName("output")
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return nil
	}
	if err := o.output.Set(v); err != nil {
		return usageErrorf("%s=%q: %v", name, v, err)
	}
	return nil
}

// createdOutput is what `tls ca create` and `tls cert create` print.
type createdOutput struct {
	SPIFFEID    string   `json:"spiffeId"`
	TrustDomain string   `json:"trustDomain,omitempty"`
	Kind        string   `json:"kind,omitempty"`
	Name        string   `json:"name,omitempty"`
	Region      string   `json:"region,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
	IPAddresses []string `json:"ipAddresses,omitempty"`
	NotAfter    string   `json:"notAfter"`
	SHA256      string   `json:"sha256Fingerprint"`
	pki.Paths
}

func (c createdOutput) result() *result {
	r := &result{value: c}
	r.add("SPIFFEID", c.SPIFFEID)
	r.add("TrustDomain", c.TrustDomain)
	r.add("Kind", c.Kind)
	r.add("Region", c.Region)
	r.add("DNSNames", strings.Join(c.DNSNames, ", "))
	r.add("IPAddresses", strings.Join(c.IPAddresses, ", "))
	r.add("NotAfter", c.NotAfter)
	r.add("SHA256Fingerprint", c.SHA256)
	r.add("Certificate", c.Cert+" (mode 0644)")
	r.add("PrivateKey", c.Key+" (mode 0600)")
	return r
}
