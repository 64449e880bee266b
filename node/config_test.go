package node_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/node"
)

// A listener bound to every interface needs an advertise address, and the
// error names the flag to set; an advertise address must be dialable.
func TestValidateBindEverywhereNeedsAdvertise(t *testing.T) {
	base := func() node.Config {
		c := node.DefaultConfig()
		c.DataDir, c.HSM.Passphrase = t.TempDir(), []byte("p")
		c.GossipAddr, c.GossipInsecure = "127.0.0.1:7403", true
		return c
	}
	cases := []struct {
		name string
		edit func(*node.Config)
		want string // "" when valid
	}{
		{"loopback binds", func(*node.Config) {}, ""},
		{"api 0.0.0.0", func(c *node.Config) { c.APIAddr = "0.0.0.0:7400" }, "--api-addr 0.0.0.0:7400 binds every interface"},
		{"api no host", func(c *node.Config) { c.APIAddr = ":7400" }, "set --advertise-api-addr"},
		{"cluster [::]", func(c *node.Config) { c.ClusterAddr = "[::]:7404" }, "set --advertise-cluster-addr"},
		{"raft 0.0.0.0", func(c *node.Config) { c.RaftAddr = "0.0.0.0:7401" }, "set --advertise-raft-addr"},
		{"gossip 0.0.0.0", func(c *node.Config) { c.GossipAddr = "0.0.0.0:7403" }, "set --advertise-gossip-addr"},
		{"all advertised", func(c *node.Config) {
			c.APIAddr, c.AdvertiseAPIAddr = "0.0.0.0:7400", "kms.example:7400"
			c.ClusterAddr, c.AdvertiseClusterAddr = "0.0.0.0:7404", "10.0.0.1:7404"
			c.RaftAddr, c.AdvertiseRaftAddr = "[::]:7401", "10.0.0.1:7401"
			c.GossipAddr, c.AdvertiseGossipAddr = "0.0.0.0:7403", "10.0.0.1:7403"
		}, ""},
		{"advertise unspecified", func(c *node.Config) { c.AdvertiseAPIAddr = "0.0.0.0:7400" }, "--advertise-api-addr \"0.0.0.0:7400\": an advertise address needs a host"},
		{"advertise port 0", func(c *node.Config) { c.AdvertiseRaftAddr = "10.0.0.1:0" }, "is not a number from 1 to 65535"},
		{"advertise no port", func(c *node.Config) { c.AdvertiseGossipAddr = "10.0.0.1" }, "--advertise-gossip-addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, node.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want %q", err, tc.want)
			}
		})
	}
}
