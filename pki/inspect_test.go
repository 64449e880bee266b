package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInspectNodeCertificate(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	iss := issueNode(t, ca, "n1")
	now := iss.Cert.NotAfter.Add(-(10*24*time.Hour + 3*time.Hour + 30*time.Minute))
	items, err := Inspect(iss.CertPEM(), now)
	if err != nil || len(items) != 1 {
		t.Fatalf("%v %v", items, err)
	}
	ci := items[0].Certificate
	if items[0].Type != ItemCertificate || items[0].Index != 1 || items[0].PEMType != "CERTIFICATE" {
		t.Errorf("item %+v", items[0])
	}
	want := CertInfo{
		Subject: "CN=n1,OU=eu-west", Issuer: "CN=Meridian CA meridian.test",
		SPIFFEID: "spiffe://meridian.test/node/n1", TrustDomain: "meridian.test", Kind: KindNode, Name: "n1", Region: "eu-west",
		KeyAlgorithm: "ECDSA P-256", ExpiresIn: "10d 3h",
	}
	if ci.Subject != want.Subject || ci.Issuer != want.Issuer || ci.SPIFFEID != want.SPIFFEID || ci.TrustDomain != want.TrustDomain ||
		ci.Kind != want.Kind || ci.Name != want.Name || ci.Region != want.Region || ci.KeyAlgorithm != want.KeyAlgorithm ||
		ci.ExpiresIn != want.ExpiresIn || ci.IsCA || ci.SelfSigned || ci.Expired {
		t.Errorf("got %+v", ci)
	}
	if !slices.Equal(ci.DNSNames, []string{"n1.meridian.test", "localhost"}) || !slices.Equal(ci.IPAddresses, []string{"127.0.0.1", "::1"}) {
		t.Errorf("SANs %v %v", ci.DNSNames, ci.IPAddresses)
	}
	if !slices.Equal(ci.ExtKeyUsage, []string{"serverAuth", "clientAuth"}) || !slices.Equal(ci.KeyUsage, []string{"digitalSignature"}) {
		t.Errorf("usages %v %v", ci.KeyUsage, ci.ExtKeyUsage)
	}
	if ci.SHA256 != fingerprint(iss.Cert.Raw) || len(ci.SHA256) != 95 || strings.ToUpper(ci.SHA256) != ci.SHA256 {
		t.Errorf("fingerprint %q", ci.SHA256)
	}
	if len(ci.Warnings) != 0 {
		t.Errorf("warnings %q", ci.Warnings)
	}
}

// A bundle (CA, node certificate and key in one file) is described item
// by item; the key's public fingerprint matches its certificate's, and
// nothing of the private key appears in the description.
func TestInspectBundleAndKey(t *testing.T) {
	ca, caKey := newCA(t, time.Time{})
	iss := issueClient(t, ca, "alice")
	keyPEM, _ := iss.KeyPEM()
	caKeyPEM, _ := EncodeKeyPEM(caKey)
	sec1, _ := x509.MarshalECPrivateKey(iss.Key)
	sec1PEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	var bundle bytes.Buffer
	bundle.WriteString("leading text, as openssl -text leaves\n")
	bundle.Write(iss.CertPEM())
	bundle.Write(ca.CertPEM())
	bundle.Write(keyPEM)
	bundle.Write(sec1PEM)
	bundle.WriteString("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
	items, err := Inspect(bundle.Bytes(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Fatalf("%d items", len(items))
	}
	if c := items[0].Certificate; c.Kind != KindClient || c.Name != "alice" || c.Region != "" || !slices.Equal(c.ExtKeyUsage, []string{"clientAuth"}) {
		t.Errorf("client: %+v", c)
	}
	if c := items[1].Certificate; c.Kind != KindCA || !c.IsCA || !c.SelfSigned || c.SPIFFEID != "spiffe://meridian.test" ||
		!slices.Equal(c.KeyUsage, []string{"keyCertSign", "cRLSign"}) {
		t.Errorf("CA: %+v", c)
	}
	for _, i := range []int{2, 3} {
		k := items[i].PrivateKey
		if items[i].Type != ItemPrivateKey || k.Algorithm != "ECDSA P-256" || k.PublicKeySHA256 != items[0].Certificate.PublicKeySHA256 {
			t.Errorf("key %d: %+v", i, k)
		}
	}
	if items[2].PrivateKey.Format != "PKCS#8" || items[3].PrivateKey.Format != "SEC 1" {
		t.Errorf("formats %q %q", items[2].PrivateKey.Format, items[3].PrivateKey.Format)
	}
	if items[4].Type != ItemOther || items[4].PEMType != "CERTIFICATE REQUEST" {
		t.Errorf("other: %+v", items[4])
	}
	out, _ := json.Marshal(items)
	secrets := [][]byte{iss.Key.D.Bytes(), caKey.D.Bytes()}
	for _, p := range [][]byte{keyPEM, caKeyPEM, sec1PEM} {
		b, _ := pem.Decode(p)
		secrets = append(secrets, b.Bytes)
	}
	for _, s := range secrets {
		for _, enc := range []string{string(s), base64.StdEncoding.EncodeToString(s), strings.ToUpper(hexOf(s)), hexOf(s)} {
			if strings.Contains(string(out), enc[:min(len(enc), 24)]) {
				t.Fatal("the description holds private key bytes")
			}
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

func TestInspectWarnsAndExpires(t *testing.T) {
	ca, _ := newCA(t, time.Now().Add(-400*24*time.Hour))
	old, err := ca.IssueNode(NodeRequest{NodeID: "n1", Region: "r", Validity: 24 * time.Hour, Now: time.Now().Add(-50 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	items, err := Inspect(old.CertPEM(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ci := items[0].Certificate
	if !ci.Expired || !strings.HasPrefix(ci.ExpiresIn, "expired 1d ") || !strings.HasSuffix(ci.ExpiresIn, " ago") {
		t.Errorf("expired %v, %q", ci.Expired, ci.ExpiresIn)
	}
	joined := strings.Join(ci.Warnings, "\n")
	for _, w := range []string{"expired on", "no DNS or IP SAN"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", ci.Warnings, w)
		}
	}
}

// A certificate another CA made without SPIFFE IDs is still described,
// with a warning saying why Meridian could not use it.
func TestInspectForeignCertificate(t *testing.T) {
	key, _ := GenerateKey()
	tmpl := &x509.Certificate{SerialNumber: bigOne(), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"web.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	// DER, as openssl -outform der writes it.
	items, err := Inspect(der, time.Now())
	if err != nil || len(items) != 1 {
		t.Fatalf("%v %v", items, err)
	}
	ci := items[0].Certificate
	if ci.Kind != KindNone || ci.SPIFFEID != "" || !strings.Contains(strings.Join(ci.Warnings, " "), "no SPIFFE ID (no URI SAN)") {
		t.Errorf("%+v", ci)
	}
}

func TestInspectGarbage(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw[:100]})
	badKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a key")})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "the input is empty"},
		{"blank", []byte(" \n\t"), "the input is empty"},
		{"text", []byte("hello world"), "no PEM block"},
		{"bad DER", []byte{0x30, 0x03, 0x01}, "not a DER certificate"},
		{"truncated certificate", append(ca.CertPEM(), corrupt...), "block 2 (CERTIFICATE)"},
		{"bad key", badKey, "block 1 (PRIVATE KEY)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(tt.in, time.Now())
			wantErr(t, err, ErrParse, tt.want)
		})
	}
	items, err := Inspect([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), time.Now())
	if err != nil || !items[0].PrivateKey.Encrypted || items[0].PrivateKey.Algorithm != "" {
		t.Fatalf("encrypted key: %+v %v", items, err)
	}
}
