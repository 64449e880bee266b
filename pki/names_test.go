package pki

import (
	"strings"
	"testing"
	"time"
)

// Every kind of bad input is refused as ErrInvalidInput with a message
// naming the value and what is wrong with it.
func TestBadInputs(t *testing.T) {
	ca, _ := newCA(t, time.Time{})
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"empty trust domain", CAConfig{}.Validate(), []string{"trust domain is empty"}},
		{"upper-case trust domain", CAConfig{TrustDomain: "Example.org"}.Validate(), []string{`trust domain "Example.org"`, "lowercase"}},
		{"trust domain as a URI", CAConfig{TrustDomain: "spiffe://example.org"}.Validate(), []string{"not a URI"}},
		{"trust domain with a slash", CAConfig{TrustDomain: "example.org/x"}.Validate(), []string{`"example.org/x"`}},
		{"long trust domain", CAConfig{TrustDomain: strings.Repeat("a", 256)}.Validate(), []string{"at most 255"}},
		{"negative CA validity", CAConfig{TrustDomain: "x.org", Validity: -time.Hour}.Validate(), []string{"negative"}},
		{"CA validity over the maximum", CAConfig{TrustDomain: "x.org", Validity: MaxCAValidity + 24*time.Hour}.Validate(), []string{"36501 days", "maximum of 36500 days"}},
		{"empty node id", NodeRequest{Region: "r"}.Validate(), []string{"node id is empty"}},
		{"node id with a slash", NodeRequest{NodeID: "a/b", Region: "r"}.Validate(), []string{`node id "a/b"`, "letters, numbers"}},
		{"node id dot-dot", NodeRequest{NodeID: "..", Region: "r"}.Validate(), []string{`node id ".."`, "dot segments"}},
		{"node id with a space", NodeRequest{NodeID: "n 1", Region: "r"}.Validate(), []string{`node id "n 1"`}},
		{"long node id", NodeRequest{NodeID: long, Region: "r"}.Validate(), []string{"node id is 65 characters; at most 64"}},
		{"missing region", NodeRequest{NodeID: "n1"}.Validate(), []string{"region is empty"}},
		{"region with a comma", NodeRequest{NodeID: "n1", Region: "us,east"}.Validate(), []string{`region "us,east"`}},
		{"region starting with a dash", NodeRequest{NodeID: "n1", Region: "-us"}.Validate(), []string{`region "-us"`, "starting with a letter or digit"}},
		{"long region", NodeRequest{NodeID: "n1", Region: long}.Validate(), []string{"region is 65 characters"}},
		{"DNS name with underscore", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"a_b.example"}}.Validate(), []string{`DNS name "a_b.example"`}},
		{"DNS name that is an IP", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"10.0.0.1"}}.Validate(), []string{"IP SAN"}},
		{"DNS name with a trailing dot", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"a.example."}}.Validate(), []string{"trailing dot"}},
		{"DNS name with an empty label", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"a..example"}}.Validate(), []string{"1 to 63"}},
		{"DNS wildcard inside", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"a.*.example"}}.Validate(), []string{"wildcard"}},
		{"DNS label ending in a dash", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{"a-.example"}}.Validate(), []string{"'-'"}},
		{"empty DNS name", NodeRequest{NodeID: "n1", Region: "r", DNSNames: []string{""}}.Validate(), []string{"DNS name is empty"}},
		{"leaf validity over the maximum", NodeRequest{NodeID: "n1", Region: "r", Validity: 826 * 24 * time.Hour}.Validate(), []string{"826 days", "maximum of 825 days"}},
		{"bad client name", ClientRequest{Name: "alice@corp"}.Validate(), []string{`client name "alice@corp"`}},
		{"negative client validity", ClientRequest{Name: "alice", Validity: -1}.Validate(), []string{"negative"}},
		{"outlives the CA", func() error {
			_, err := ca.IssueClient(ClientRequest{Name: "a", Validity: 90 * 24 * time.Hour, Now: time.Now().Add(DefaultCAValidity - 24*time.Hour)})
			return err
		}(), []string{"would outlive the CA", "renew the CA"}},
		{"CA expired", func() error {
			_, err := ca.IssueClient(ClientRequest{Name: "a", Now: time.Now().Add(DefaultCAValidity + 24*time.Hour)})
			return err
		}(), []string{"the CA expired on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.err, ErrInvalidInput, tt.want...) })
	}
}

func TestParseIPs(t *testing.T) {
	ips, err := ParseIPs([]string{"10.0.0.1", " ::1 ", "::ffff:10.0.0.2"})
	if err != nil || len(ips) != 3 || ips[0].String() != "10.0.0.1" || ips[2].String() != "10.0.0.2" {
		t.Fatalf("ParseIPs = %v, %v", ips, err)
	}
	for in, want := range map[string]string{
		"10.0.0":    `IP address "10.0.0": not an IPv4 or IPv6 address`,
		"host.test": `"host.test": not an IPv4 or IPv6 address`,
		"0.0.0.0":   "0.0.0.0 is unspecified",
		"::":        ":: is unspecified",
	} {
		_, err := ParseIPs([]string{"10.0.0.1", in})
		wantErr(t, err, ErrInvalidInput, want)
	}
}

func TestGoodNames(t *testing.T) {
	for _, n := range []string{"localhost", "n1.eu-west.meridian.test", "*.nodes.meridian.test", "xn--bcher-kva.example", "A.B"} {
		if err := CheckDNSName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, r := range []string{"us-east-1", "eu_west", "EU", "r1.a"} {
		if err := CheckRegion(r); err != nil {
			t.Errorf("%q: %v", r, err)
		}
	}
	for _, id := range []string{"n1", "node-7.b_c", strings.Repeat("x", 64), "N1"} {
		if err := CheckNodeID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
}
