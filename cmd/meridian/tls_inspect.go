package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/pki"
)

// inspectedFile is one FILE argument of `tls inspect` and what it holds.
type inspectedFile struct {
	File  string     `json:"file"`
	Items []pki.Item `json:"items"`
}

func newTLSInspectCmd() *cobra.Command {
	o := &clientOptions{output: outputText}
	return withOutputFlag(o, &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Describe certificates and keys in PEM files",
		Long: `Describe every certificate and private key in each FILE ("-" for stdin): PEM,
one block or a bundle (text around the blocks is ignored), or a DER
certificate. For a certificate: its SPIFFE ID and what that makes it (a
node, a client, the CA, another SPIFFE identity, or none), the node or
client name, the region, DNS and IP SANs, key usages, subject and issuer,
validity and how long until it expires, the SHA-256 fingerprint (as
"openssl x509 -fingerprint -sha256" prints it), the key algorithm, and
warnings about anything that would keep Meridian from accepting it as what
it seems meant for. For a private key: its algorithm and format, never its
contents.

Certificates and keys both show PublicKeySHA256, the SHA-256 of the public
key, so a key file can be matched to its certificate.

A file that cannot be read or parsed is reported on stderr after the
others are described, and the command exits 1.`,
		Example: `  meridian tls inspect ca.pem node-n1.pem node-n1-key.pem
  meridian tls inspect -o json node-n1.pem | jq '.files[].items[].certificate.expiresIn'
  kubectl get secret meridian-n1-tls -o jsonpath='{.data.tls\.crt}' | base64 -d | meridian tls inspect -`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s needs at least one FILE (\"-\" for stdin)", c.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFromEnv(cmd, o); err != nil {
				return err
			}
			stdin := 0
			for _, a := range args {
				if a == "-" {
					stdin++
				}
			}
			if stdin > 1 {
				return usageErrorf("\"-\" (stdin) may be given once")
			}
			now := time.Now()
			var files []inspectedFile
			var errs []error
			for _, path := range args {
				data, err := readFileOrStdin(cmd, path)
				if err == nil {
					var items []pki.Item
					if items, err = pki.Inspect(data, now); err == nil {
						files = append(files, inspectedFile{File: path, Items: items})
						continue
					}
				}
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
			}
			if err := printInspected(cmd, o, files); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	})
}

func withOutputFlag(o *clientOptions, cmd *cobra.Command) *cobra.Command {
	addOutputFlag(cmd.Flags(), &o.output)
	return cmd
}

func printInspected(cmd *cobra.Command, o *clientOptions, files []inspectedFile) error {
	if o.output == outputJSON {
		if files == nil {
			files = []inspectedFile{}
		}
		return emit(cmd, o, rawOut{}, &result{value: struct {
			Files []inspectedFile `json:"files"`
		}{files}})
	}
	var b strings.Builder
	for _, f := range files {
		for _, it := range f.Items {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			writeItem(&b, f.File, it)
		}
	}
	_, err := io.WriteString(cmd.OutOrStdout(), b.String())
	return err
}

// writeItem renders one item as a heading and "  Name: value" lines, the
// field names being those of the create commands' output.
func writeItem(b *strings.Builder, file string, it pki.Item) {
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(b, "  %s: %s\n", name, printable(value))
		}
	}
	switch it.Type {
	case pki.ItemCertificate:
		c := it.Certificate
		fmt.Fprintf(b, "%s #%d: certificate: %s\n", file, it.Index, printable(certSummary(c)))
		line("SPIFFEID", c.SPIFFEID)
		line("Kind", string(c.Kind))
		switch c.Kind {
		case pki.KindNode:
			line("Node", c.Name)
		case pki.KindClient:
			line("Client", c.Name)
		case pki.KindCA:
			line("TrustDomain", c.TrustDomain)
		}
		line("Region", c.Region)
		line("Subject", c.Subject)
		issuer := c.Issuer
		if c.SelfSigned {
			issuer += " (self-signed)"
		}
		line("Issuer", issuer)
		line("DNSNames", strings.Join(c.DNSNames, ", "))
		line("IPAddresses", strings.Join(c.IPAddresses, ", "))
		if c.SPIFFEID == "" {
			line("URIs", strings.Join(c.URIs, ", "))
		}
		line("CA", fmt.Sprint(c.IsCA))
		line("KeyUsage", strings.Join(c.KeyUsage, ", "))
		line("ExtKeyUsage", strings.Join(c.ExtKeyUsage, ", "))
		line("NotBefore", c.NotBefore.Format(time.RFC3339))
		line("NotAfter", c.NotAfter.Format(time.RFC3339))
		line("ExpiresIn", c.ExpiresIn)
		line("SerialNumber", c.SerialNumber)
		line("SHA256Fingerprint", c.SHA256)
		line("KeyAlgorithm", c.KeyAlgorithm)
		line("PublicKeySHA256", c.PublicKeySHA256)
		for _, w := range c.Warnings {
			line("Warning", w)
		}
	case pki.ItemPrivateKey:
		k := it.PrivateKey
		fmt.Fprintf(b, "%s #%d: private key (not shown)\n", file, it.Index)
		if k.Encrypted {
			line("Encrypted", "true (not decrypted)")
		}
		line("KeyAlgorithm", k.Algorithm)
		line("Format", k.Format)
		line("PublicKeySHA256", k.PublicKeySHA256)
	default:
		fmt.Fprintf(b, "%s #%d: %s PEM block (not inspected)\n", file, it.Index, it.PEMType)
	}
}

// certSummary is the heading's one-phrase answer to "what is this?".
func certSummary(c *pki.CertInfo) string {
	var s string
	switch c.Kind {
	case pki.KindCA:
		s = "CA of trust domain " + c.TrustDomain
	case pki.KindNode:
		s = fmt.Sprintf("node %s in region %s", c.Name, orUnknown(c.Region))
	case pki.KindClient:
		s = "client " + c.Name
	case pki.KindOther:
		s = "SPIFFE ID " + c.SPIFFEID
	default:
		if s = "no SPIFFE ID"; c.IsCA {
			s = "CA without a SPIFFE trust domain"
		}
	}
	if c.Expired {
		return s + ", EXPIRED"
	}
	return s + ", expires in " + c.ExpiresIn
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// printable quotes a value that holds control characters or invalid UTF-8:
// certificate fields come from whoever made the certificate, and an escape
// sequence in a Subject must not reach the operator's terminal raw.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
