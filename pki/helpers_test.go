package pki

import (
	"crypto/ecdsa"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

const testTD = "meridian.test"

// newCA makes a software CA for testTD, issued at now (zero: the present).
func newCA(t *testing.T, now time.Time) (*CA, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultCAConfig(testTD)
	cfg.Now = now
	ca, err := CreateCA(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func issueNode(t *testing.T, ca *CA, id string) *Issued {
	t.Helper()
	iss, err := ca.IssueNode(NodeRequest{NodeID: id, Region: "eu-west", DNSNames: []string{id + ".meridian.test", "localhost"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func issueClient(t *testing.T, ca *CA, name string) *Issued {
	t.Helper()
	iss, err := ca.IssueClient(ClientRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// wantErr fails unless err wraps target and its message holds every one
// of subs.
func wantErr(t *testing.T, err, target error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v %q", target, subs)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q is not %v", err, target)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

// isEOF reports a clean close of a connection that carried no data.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }

func bigOne() *big.Int { return big.NewInt(1) }
