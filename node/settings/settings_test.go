package settings

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// mapSource is a Source over a map, every value "from" its flag.
func mapSource(m map[string]string) Source {
	return func(name string) (string, string, bool) {
		v, ok := m[name]
		return v, "--" + name, ok
	}
}

// Every setting reaches its node.Config field, through its flag's parser.
func TestLoadFillsNodeConfig(t *testing.T) {
	o, err := Load(mapSource(map[string]string{
		"data-dir": "/d", "api-addr": "0.0.0.0:7400", "advertise-api-addr": "api.example:7400",
		"advertise-raft-addr": "10.0.0.1:7401", "advertise-gossip-addr": "10.0.0.1:7403",
		"join": "a:7404,b:7404", "wan-rtt": "80ms", "snapshot-threshold": "64", "target-voters": "3",
		"gossip-insecure": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := o.Node
	if c.DataDir != "/d" || c.APIAddr != "0.0.0.0:7400" || c.AdvertiseAPIAddr != "api.example:7400" ||
		c.AdvertiseRaftAddr != "10.0.0.1:7401" || c.AdvertiseGossipAddr != "10.0.0.1:7403" ||
		strings.Join(c.Join, " ") != "a:7404 b:7404" || c.WANRTT != 80*time.Millisecond ||
		c.SnapshotThreshold != 64 || c.TargetVoters != 3 || !c.GossipInsecure {
		t.Fatalf("loaded %+v", c)
	}
	if c.ClusterAddr != "127.0.0.1:7404" || c.HSM.Backend != "soft" {
		t.Fatalf("defaults lost: cluster %q hsm %q", c.ClusterAddr, c.HSM.Backend)
	}
}

// A bad value is refused as its flag would refuse it, naming where it
// came from; a required setting that nobody gave names all three ways.
func TestLoadRefusals(t *testing.T) {
	src := func(name string) (string, string, bool) {
		switch name {
		case "data-dir":
			return "/d", "--data-dir", true
		case "target-voters":
			return "three", "MERIDIAN_TARGET_VOTERS", true
		}
		return "", "", false
	}
	_, err := Load(src)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `MERIDIAN_TARGET_VOTERS="three": not a valid --target-voters (int)`) {
		t.Fatalf("got %v", err)
	}
	_, err = Load(mapSource(nil))
	if err == nil || !strings.Contains(err.Error(), "--data-dir is required (or MERIDIAN_DATA_DIR, or data-dir in --config)") {
		t.Fatalf("got %v", err)
	}
}

// Args renders exactly the settings that differ from the defaults, and
// parsing them back gives the same options: the multi-process harness's
// command lines say what its node.Config says.
func TestArgsRoundTrip(t *testing.T) {
	o := Defaults()
	o.Node.DataDir, o.Node.NodeID = "/data", "n1"
	o.Node.APIAddr, o.Node.AdvertiseAPIAddr = "0.0.0.0:7500", "127.0.0.2:7500"
	o.Node.Join = []string{"127.0.0.1:7404", "127.0.0.3:7404"}
	o.Node.HeartbeatTimeout, o.Node.GossipInsecure, o.Node.SnapshotThreshold = 500*time.Millisecond, true, 10
	args := Args(o)
	want := "--node-id=n1 --data-dir=/data --api-addr=0.0.0.0:7500 --advertise-api-addr=127.0.0.2:7500 " +
		"--gossip-insecure=true --join=127.0.0.1:7404,127.0.0.3:7404 --raft-heartbeat-timeout=500ms --snapshot-threshold=10"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("Args:\n got %s\nwant %s", got, want)
	}
	back := Defaults()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	Register(fs, &back)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if strings.Join(Args(back), " ") != want {
		t.Fatalf("round trip: %v", Args(back))
	}
}

// Every setting has a unique name, help, and an environment variable
// derived from its name.
func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range All() {
		if s.Name == "" || s.Help == "" || seen[s.Name] {
			t.Errorf("setting %q: empty or duplicate", s.Name)
		}
		seen[s.Name] = true
	}
	if EnvName("advertise-raft-addr") != "MERIDIAN_ADVERTISE_RAFT_ADDR" {
		t.Fatal(EnvName("advertise-raft-addr"))
	}
}

// Every setting fills a field of its own (a deprecated alias shares its
// replacement's): two settings on one field would pass every load test
// above while one of them silently does nothing.
func TestEverySettingHasItsOwnField(t *testing.T) {
	var o Options
	owner := map[any]string{}
	for _, s := range All() {
		if s.Deprecated != "" {
			continue
		}
		p := s.field(&o)
		if prev, ok := owner[p]; ok {
			t.Errorf("settings %s and %s fill the same field", prev, s.Name)
		}
		owner[p] = s.Name
	}
	for _, s := range All() {
		if _, ok := owner[s.field(&o)]; s.Deprecated != "" && !ok {
			t.Errorf("deprecated %s fills a field no current setting fills", s.Name)
		}
	}
}

// The TLS settings fill node.Config.TLS, and Resolve refuses a partial set
// naming the missing flag: half a TLS configuration must never start a
// plaintext node.
func TestTLSSettings(t *testing.T) {
	base := map[string]string{"data-dir": t.TempDir(), "node-id": "n1", "gossip-insecure": "true"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	o, err := Load(mapSource(with(map[string]string{"tls-cert": "/c.pem", "tls-key": "/k.pem", "tls-ca": "/ca.pem", "tls-trust-domain": "td.example"})))
	if err != nil {
		t.Fatal(err)
	}
	if tl := o.Node.TLS; tl.CertFile != "/c.pem" || tl.KeyFile != "/k.pem" || tl.CAFile != "/ca.pem" || tl.TrustDomain != "td.example" {
		t.Fatalf("loaded %+v", tl)
	}
	t.Setenv(EnvHSMPassphrase, "not-a-secret")
	for _, tc := range []struct {
		given   map[string]string
		missing string
	}{
		{map[string]string{"tls-cert": "/c", "tls-key": "/k"}, "--tls-ca"},
		{map[string]string{"tls-cert": "/c", "tls-ca": "/ca"}, "--tls-key"},
		{map[string]string{"tls-key": "/k", "tls-ca": "/ca"}, "--tls-cert"},
	} {
		o, err := Load(mapSource(with(tc.given)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Resolve(o)
		// "but --tls-x (" names the missing flag; the trailing hint names
		// all three, so a bare flag name would match any of them.
		if err == nil || !strings.Contains(err.Error(), "but "+tc.missing+" (") {
			t.Errorf("%v: got %v, want an error naming %s", tc.given, err, tc.missing)
		}
	}
}
